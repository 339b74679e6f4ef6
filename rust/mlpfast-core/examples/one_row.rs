//! Times one-row inference of the mnist model (784-256-128-10, float32) without Python:
//! `cargo run --release --example one_row`. Prints the median of many calls.

use std::time::Instant;

use mlpfast_core::{Activation, Hidden, Loss, MatRef, ParamsRef, Rng, Spec};

fn median_us(mut f: impl FnMut()) -> f64 {
    for _ in 0..2000 {
        f();
    }
    let mut t: Vec<f64> = (0..20_000)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let sizes = [784, 256, 128, 10];
    let spec = Spec::new(&sizes, Hidden::Activation(Activation::Relu), Loss::Softmax).unwrap();
    let mut rng = Rng::new(0);
    let params = spec.init_params::<f32>(None, &mut rng).unwrap();
    let refs: Vec<ParamsRef<'_, f32>> = params.iter().map(|p| p.view()).collect();
    let x: Vec<f32> = (0..784).map(|_| rng.normal() as f32).collect();
    let mut out = vec![0.0f32; 10];
    let us = median_us(|| {
        spec.predict_scores(&refs, MatRef::new(&x, 1, 784), &mut out)
            .unwrap()
    });
    println!("predict_scores, one row: {us:.2} µs");
    let mut h1 = vec![0.0f32; 256];
    let mut h2 = vec![0.0f32; 128];
    let us = median_us(|| {
        mlpfast_core::gemm::matmul(
            &mut h1,
            MatRef::new(&x, 1, 784),
            MatRef::new(&params[0].weight, 784, 256),
            false,
        );
        mlpfast_core::gemm::matmul(
            &mut h2,
            MatRef::new(&h1, 1, 256),
            MatRef::new(&params[1].weight, 256, 128),
            false,
        );
        mlpfast_core::gemm::matmul(
            &mut out,
            MatRef::new(&h2, 1, 128),
            MatRef::new(&params[2].weight, 128, 10),
            false,
        );
    });
    println!("three products alone: {us:.2} µs");
}
