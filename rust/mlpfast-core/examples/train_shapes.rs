//! Times `train::fit` on one of the benchmark shapes, for profiling without Python:
//! `cargo run --release --example train_shapes -- mnist [threads]`.

use std::time::Instant;

use mlpfast_core::train::{Examples, Silent, fit};
use mlpfast_core::{
    Activation, FitConfig, Hidden, Loss, MatRef, ParamsMut, Rng, Session, Spec, Targets,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("mnist", String::as_str);
    if let Some(t) = args.get(2) {
        mlpfast_core::threads::set_num_threads(t.parse().expect("thread count")).unwrap();
    }
    let (sizes, act, batch, samples, epochs): (&[usize], _, usize, usize, usize) = match name {
        "tiny" => (&[64, 128, 10], Activation::Relu, 32, 65_536, 1),
        "deep" => (
            &[32, 64, 64, 64, 64, 64, 64, 2],
            Activation::Relu,
            64,
            32_768,
            1,
        ),
        "mnist32" => (&[784, 256, 128, 10], Activation::Relu, 32, 16_384, 1),
        "wide" => (&[1024, 2048, 2048, 10], Activation::Relu, 256, 8_192, 1),
        _ => (&[784, 256, 128, 10], Activation::Relu, 128, 60_000, 1),
    };
    let spec = Spec::new(sizes, Hidden::Activation(act), Loss::Softmax).unwrap();
    let mut rng = Rng::new(0);
    let x: Vec<f32> = (0..samples * sizes[0])
        .map(|_| rng.normal() as f32)
        .collect();
    let y: Vec<u32> = (0..samples)
        .map(|_| rng.below(sizes[sizes.len() - 1]) as u32)
        .collect();
    let mut params = spec
        .init_params::<f32>(None, &mut rng)
        .expect("the shapes fit in memory");
    let cfg = FitConfig {
        epochs: epochs as i64,
        batch_size: batch as i64,
        seed: Some(0),
        ..FitConfig::default()
    };
    if std::env::var("PREDICT").is_ok() {
        let refs: Vec<mlpfast_core::ParamsRef<'_, f32>> = params.iter().map(|p| p.view()).collect();
        let k = sizes[sizes.len() - 1];
        let mut out = vec![0.0f32; samples * k];
        for _ in 0..5 {
            let t = Instant::now();
            spec.predict_scores(&refs, MatRef::new(&x, samples, sizes[0]), &mut out)
                .unwrap();
            println!(
                "predict {samples} rows: {:.1} ms",
                t.elapsed().as_secs_f64() * 1e3
            );
        }
        return;
    }
    let fits = std::env::var("FITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for _ in 0..fits {
        let mut pm: Vec<ParamsMut<'_, f32>> = params.iter_mut().map(|p| p.view_mut()).collect();
        let mut session = Session::new(Rng::new(0));
        let t = Instant::now();
        let targets = Targets::Classes(&y);
        fit(
            &spec,
            &mut pm,
            Examples {
                x: MatRef::new(&x, samples, sizes[0]),
                y: &targets,
                weights: None,
            },
            None,
            &cfg,
            &mut session,
            &mut Silent,
        )
        .unwrap();
        let steps = samples.div_ceil(batch) * epochs;
        println!(
            "{name}: {:.1} us/step",
            t.elapsed().as_secs_f64() * 1e6 / steps as f64
        );
    }
}
