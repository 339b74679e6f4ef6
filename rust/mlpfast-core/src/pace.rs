//! When a fit engages its helpers: measured, round by round.
//!
//! Extra threads pay only when they have a core to run on. On a busy machine a helper that is
//! descheduled in the middle of an item stalls the whole step for a scheduler time slice
//! (milliseconds) — far longer than a small step. So a fit does not assume; it measures.
//! Steps are grouped in *rounds* of at least [`ROUND_SECS`]; each round runs either with the
//! helpers ("parallel") or on the leader alone ("serial"), and now and then a round of the
//! other mode is tried (a *probe*):
//!
//! - A fit starts serial when its steps are short (a stall would cost many of them) and
//!   parallel when they are long; the first round is followed at once by a probe of the
//!   other mode, so the two are compared on real steps before anything is decided.
//! - A round's figure is its mean step time without its slowest step: on a shared machine a
//!   thread loses its core for a millisecond now and then, and one such loss must not decide.
//!   So a round holds at least three steps, unless its other steps alone span a round.
//! - A probe wins when its steps are faster than the current mode's by more than [`MARGIN`];
//!   its mode then becomes the current one. A probe ends early as lost when its first step
//!   takes [`CLEAR_LOSS`] steps of the current mode, or when it is slower by more than
//!   [`LOSE`] over two steps and a quarter of a round; a parallel probe whose first step (the
//!   helpers' cold start, not counted otherwise) takes [`COLD_LOSS`] serial steps and more
//!   than [`COLD_SECS`] ends at once. After a lost probe (its cold step's cost included), the pause before the next one doubles, up to
//!   [`MAX_PAUSE_SECS`] of training, and is never shorter than what keeps the probes' cost
//!   under [`PROBE_BUDGET`] of the time.
//! - A regular round slower than the other mode's last round sets off a probe at once (the
//!   load changed), and so does a parallel round in which the helpers made the jobs slower
//!   than the leader's own pace says it would have been alone (see `team`: a helper
//!   descheduled mid-item shows up there first).
//!
//! Only the choice of who computes depends on these measurements; what is computed depends
//! on the shapes alone, so results stay bit-identical whatever the pacer decides.

use crate::team::{JobStats, Team};
use crate::threads;

/// A thread is worth engaging for each this many flops of a step (a few microseconds of work;
/// below that, handing out work costs more than it saves).
const THREAD_FLOPS: f64 = 5e5;
/// Steps of at least this many flops (a few milliseconds on one core) start parallel.
const LONG_STEP_FLOPS: f64 = 5e8;

/// Helpers a step of `flops` cut into `items` independent items can use: one per
/// [`THREAD_FLOPS`] beyond the first, one per item beyond the first, within the cap.
pub(crate) fn helpers_worth(flops: f64, items: usize) -> usize {
    let by_work = (flops / THREAD_FLOPS) as usize;
    by_work
        .min(items)
        .min(threads::width_cap())
        .saturating_sub(1)
}

/// A round lasts at least this long (and at least one step).
const ROUND_SECS: f64 = 4e-3;
/// A probe wins when it saves this share of the time per step.
const MARGIN: f64 = 0.03;
/// A probe that costs this share more per step ends early.
const LOSE: f64 = 0.1;
/// A probe whose first step takes this many steps of the current mode ends at once.
const CLEAR_LOSS: f64 = 1.5;
/// A parallel probe whose cold first step takes this many serial steps, and this long,
/// ends at once (a helper's vCPU may take a tenth of a millisecond to wake up: that alone
/// must not end a probe of small steps).
const COLD_LOSS: f64 = 3.0;
const COLD_SECS: f64 = 1e-3;
/// Probes may cost this share of the training time.
const PROBE_BUDGET: f64 = 0.02;
/// Steps between probes after the first lost one.
const FIRST_PAUSE: f64 = 16.0;
/// Pauses grow no longer than this much training time (unless the probes' cost asks for
/// more), so that a fit notices within a fraction of a second that a busy core came free.
const MAX_PAUSE_SECS: f64 = 0.2;

/// One round's measurements.
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    steps: u32,
    wall: f64,
    /// The leader-alone estimate of `wall`.
    alone: f64,
    /// The slowest step, and its leader-alone estimate.
    worst: f64,
    worst_alone: f64,
}

impl Round {
    fn add(&mut self, wall: f64, alone: f64) {
        self.steps += 1;
        self.wall += wall;
        self.alone += alone;
        if wall > self.worst {
            self.worst = wall;
            self.worst_alone = alone;
        }
    }

    /// Mean seconds per step and its leader-alone estimate, without the slowest step when
    /// there are three or more.
    fn per_step(&self) -> (f64, f64) {
        if self.steps >= 3 {
            let n = f64::from(self.steps - 1);
            (
                (self.wall - self.worst) / n,
                (self.alone - self.worst_alone) / n,
            )
        } else {
            let n = f64::from(self.steps);
            (self.wall / n, self.alone / n)
        }
    }
}

/// The pacer of one fit.
pub(crate) struct Pacer {
    /// Helpers a parallel round engages (0: this fit always runs serial).
    width: usize,
    parallel: bool,
    probing: bool,
    round: Round,
    /// Seconds per step of the last serial and parallel rounds.
    serial_step: Option<f64>,
    parallel_step: Option<f64>,
    /// Steps until the next probe, and the pause after a lost one.
    countdown: f64,
    pause: f64,
    /// Steps not to count: the fit's first two (its buffers are touched for the first time,
    /// its threads start) and the first after helpers were engaged (they wake up cold).
    warming: u32,
    /// What a probe's uncounted cold step cost beyond a step of the current mode.
    cold_cost: f64,
}

impl Pacer {
    /// A pacer for steps of `step_flops` that can use up to `width` helpers.
    pub(crate) fn new(width: usize, step_flops: f64) -> Self {
        Pacer {
            width,
            parallel: width > 0 && step_flops >= LONG_STEP_FLOPS,
            probing: false,
            round: Round::default(),
            serial_step: None,
            parallel_step: None,
            // The first round is followed by a probe at once.
            countdown: 0.0,
            pause: FIRST_PAUSE,
            warming: 2,
            cold_cost: 0.0,
        }
    }

    /// Engages or dismisses the team's helpers for the next step, as the current round asks
    /// (and as the budget of cores allows). Cheap when nothing changes: call it every step.
    pub(crate) fn prepare(&mut self, team: &mut Team<'_>) {
        let want = self.wanted(threads::width_cap());
        let before = team.helpers();
        // Also when this fit runs without a core (one may have freed up), or holds helpers
        // while another fit runs without one (it gives one back).
        if before != want || team.starving() || (before > 0 && team.others_starve()) {
            team.engage(want);
            self.engaged(before, team.helpers());
        }
    }

    /// Hears that the team went from `before` helpers to `after`: new ones start cold.
    fn engaged(&mut self, before: usize, after: usize) {
        if after > before {
            self.warming = self.warming.max(1);
        }
    }

    /// Helpers the next step should have, within a cap of `cap` threads.
    fn wanted(&self, cap: usize) -> usize {
        if self.parallel {
            self.width.min(cap.saturating_sub(1))
        } else {
            0
        }
    }

    /// Records one step that took `wall` seconds with `helpers` engaged, and what the team
    /// measured of its jobs (`measure` false for a step unlike the others, e.g. an epoch's
    /// short last batch); at a round's end, decides the next one.
    pub(crate) fn record(&mut self, wall: f64, jobs: JobStats, helpers: usize, measure: bool) {
        if self.width == 0 || !measure {
            return;
        }
        if self.parallel && helpers == 0 {
            // No core was free for a helper (other fits hold them): serial it is, for now.
            self.parallel = false;
            self.probing = false;
            self.countdown = self.pause;
            self.round = Round::default();
        }
        if self.warming > 0 {
            self.warming -= 1;
            if self.probing {
                if let Some(other) = self.other_step() {
                    self.cold_cost = (wall - other).max(0.0);
                    if wall > COLD_LOSS * other && wall > COLD_SECS {
                        self.round.add(wall, wall);
                        self.end_round();
                    }
                }
            }
            return;
        }
        // What the step would have taken alone: its non-job part, plus the leader's estimate
        // for the jobs.
        self.round.add(wall, wall - jobs.wall + jobs.alone);
        let r = self.round;
        let mean = r.wall / f64::from(r.steps);
        let losing = self.probing
            && self.other_step().is_some_and(|t| {
                (r.steps == 1 && mean > CLEAR_LOSS * t)
                    || (r.steps >= 2 && r.wall >= ROUND_SECS / 4.0 && mean > (1.0 + LOSE) * t)
            });
        // A round holds enough steps that its slowest one can be left out.
        let full = r.wall >= ROUND_SECS && (r.steps >= 3 || r.wall - r.worst >= ROUND_SECS);
        if losing || full {
            self.end_round();
        }
    }

    /// Seconds per step of the last round of the mode not running now.
    fn other_step(&self) -> Option<f64> {
        if self.parallel {
            self.serial_step
        } else {
            self.parallel_step
        }
    }

    fn end_round(&mut self) {
        let (per_step, alone) = self.round.per_step();
        let steps = f64::from(self.round.steps);
        let other = self.other_step();
        if self.parallel {
            self.parallel_step = Some(per_step);
        } else {
            self.serial_step = Some(per_step);
        }
        if std::mem::replace(&mut self.probing, false) {
            if other.is_none_or(|t| per_step < (1.0 - MARGIN) * t) {
                // The probed mode becomes the current one; probes start over.
                self.pause = FIRST_PAUSE;
                self.countdown = FIRST_PAUSE;
            } else {
                self.parallel = !self.parallel;
                let (fast, slow) = (other.unwrap_or(per_step), per_step);
                let cost = (slow - fast) * steps + self.cold_cost;
                let affordable = cost / (PROBE_BUDGET * fast);
                self.pause = (self.pause * 2.0)
                    .min(MAX_PAUSE_SECS / fast)
                    .max(affordable)
                    .max(FIRST_PAUSE);
                self.countdown = self.pause;
            }
        } else {
            let stalled = self.parallel && per_step >= alone;
            if stalled || other.is_some_and(|t| per_step > t) {
                self.countdown = 0.0;
            }
            self.countdown -= steps;
            if self.countdown <= 0.0 {
                self.probing = true;
                self.parallel = !self.parallel;
            }
        }
        self.round = Round::default();
        self.cold_cost = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `steps` steps through a pacer on a machine where a serial step takes `serial(i)`
    /// seconds and a parallel one `parallel(i)` (the leader estimating `alone(i)` for it);
    /// returns the steps that ran parallel, and the total time.
    fn drive(
        steps: usize,
        serial: impl Fn(usize) -> f64,
        parallel: impl Fn(usize) -> f64,
        alone: impl Fn(usize) -> f64,
    ) -> (Vec<bool>, f64) {
        drive_cold(steps, 1.0, serial, parallel, alone)
    }

    /// [`drive`], with the first parallel step after serial ones `cold` times slower (the
    /// helpers wake up with cold caches).
    fn drive_cold(
        steps: usize,
        cold: f64,
        serial: impl Fn(usize) -> f64,
        parallel: impl Fn(usize) -> f64,
        alone: impl Fn(usize) -> f64,
    ) -> (Vec<bool>, f64) {
        let mut pacer = Pacer::new(1, 1e6);
        let (mut modes, mut total) = (Vec::new(), 0.0);
        for i in 0..steps {
            let helpers = pacer.wanted(2);
            let was_parallel = modes.last().copied().unwrap_or(false);
            pacer.engaged(usize::from(was_parallel), helpers);
            let (wall, est) = if helpers > 0 {
                let c = if was_parallel { 1.0 } else { cold };
                (c * parallel(i), alone(i))
            } else {
                (serial(i), serial(i))
            };
            let jobs = JobStats { wall, alone: est };
            pacer.record(wall, jobs, helpers, true);
            modes.push(helpers > 0);
            total += wall;
        }
        (modes, total)
    }

    fn share(modes: &[bool]) -> f64 {
        modes.iter().filter(|&&p| p).count() as f64 / modes.len() as f64
    }

    #[test]
    fn helpers_that_pay_are_kept() {
        // Quiet machine, big steps: two threads nearly twice as fast.
        let (modes, total) = drive(2000, |_| 1e-3, |_| 0.55e-3, |_| 1e-3);
        assert!(share(&modes) > 0.97, "parallel share {}", share(&modes));
        // At most a few percent over always-parallel.
        assert!(total < 1.03 * 2000.0 * 0.55e-3, "{total}");
    }

    #[test]
    fn helpers_that_stall_are_let_go_and_probes_stay_cheap() {
        // Busy machine: parallel steps four times slower than serial ones.
        let (modes, total) = drive(20_000, |_| 20e-6, |_| 80e-6, |_| 25e-6);
        assert!(share(&modes) < 0.02, "parallel share {}", share(&modes));
        assert!(total < 1.06 * 20_000.0 * 20e-6, "{total}");
    }

    #[test]
    fn a_change_of_load_is_followed_both_ways() {
        // Quiet, then another process takes a core, then leaves again.
        let busy = |i: usize| (5000..10_000).contains(&i);
        let parallel = |i: usize| if busy(i) { 300e-6 } else { 110e-6 };
        let (modes, _) = drive(15_000, |_| 200e-6, parallel, |_| 200e-6);
        assert!(share(&modes[1000..5000]) > 0.9);
        assert!(share(&modes[6000..10_000]) < 0.1);
        assert!(share(&modes[11_000..]) > 0.9);
    }

    #[test]
    fn a_lost_core_now_and_then_does_not_decide() {
        // Quiet machine, mid-sized steps; every 40th step a thread loses its core for five
        // steps' time, and a helper's first step after a pause is twice as slow.
        let spike = |i: usize| if i % 40 == 7 { 5.0 } else { 1.0 };
        let (modes, total) = drive_cold(
            5000,
            2.0,
            |i| spike(i) * 1.3e-3,
            |i| spike(i) * 0.75e-3,
            |_| 1.3e-3,
        );
        assert!(
            share(&modes[200..]) > 0.95,
            "parallel share {}",
            share(&modes[200..])
        );
        let ideal: f64 = (0..5000).map(|i| spike(i) * 0.75e-3).sum();
        assert!(total < 1.04 * ideal, "{total} against {ideal}");
    }

    #[test]
    fn a_stall_seen_by_the_leader_alone_sets_off_a_serial_probe() {
        // Parallel looks fine against its own past, but the leader's estimate says one
        // thread alone would have been faster: serial is measured, and wins.
        let (modes, _) = drive(3000, |_| 100e-6, |_| 120e-6, |_| 100e-6);
        assert!(share(&modes[500..]) < 0.1);
    }

    #[test]
    fn no_free_core_means_serial_and_no_width_means_never_parallel() {
        let mut pacer = Pacer::new(1, 1e9);
        for _ in 0..10 {
            // The team could not engage a helper.
            pacer.record(1e-3, JobStats::default(), 0, true);
        }
        assert!(!pacer.parallel);
        let never = Pacer::new(0, 1e9);
        assert_eq!(never.wanted(8), 0);
        // A cap of one thread leaves no room for helpers.
        assert_eq!(Pacer::new(3, 1e9).wanted(1), 0);
        assert_eq!(Pacer::new(3, 1e9).wanted(2), 1);
        // Short steps start serial, long ones parallel.
        assert_eq!(Pacer::new(3, 1e6).wanted(4), 0);
    }
}
