//! When a fit engages its helpers: measured, round by round.
//!
//! Extra threads pay only when they have a core to run on. On a busy machine a helper that is
//! descheduled in the middle of an item stalls the whole step for a scheduler time slice
//! (milliseconds) — far longer than a small step. So a fit does not assume; it measures.
//! Steps are grouped in *rounds* of at least [`ROUND_SECS`]; each round runs either with the
//! helpers ("parallel") or on the leader alone ("serial"), and now and then a round of the
//! other mode is tried (a *probe*):
//!
//! - The first parallel round is followed at once by a serial probe: the two are compared on
//!   real steps before anything is decided.
//! - A probe wins when its steps are faster than the current mode's by more than [`MARGIN`];
//!   its mode then becomes the current one. A probe that is slower by more than [`LOSE`]
//!   once a quarter of a round has passed ends early. After a lost probe, the pause before
//!   the next one doubles, up to [`MAX_PAUSE_SECS`] of training, and is never shorter than
//!   what keeps the probes' cost under [`PROBE_BUDGET`] of the time.
//! - A regular round that is slower than the other mode's last round sets off a probe at
//!   once (the load changed), and so does a parallel round in which the helpers made the
//!   jobs slower than the leader's own pace says it would have been alone (see `team`: a
//!   helper descheduled mid-item shows up there first).
//!
//! Only the choice of who computes depends on these measurements; what is computed depends
//! on the shapes alone, so results stay bit-identical whatever the pacer decides.

use crate::team::{JobStats, Team};
use crate::threads;

/// A thread is worth engaging for each this many flops of a step (a few microseconds of work;
/// below that, handing out work costs more than it saves).
const THREAD_FLOPS: f64 = 5e5;

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
const ROUND_SECS: f64 = 2e-3;
/// A probe wins when it saves this share of the time per step.
const MARGIN: f64 = 0.03;
/// A probe that costs this share more per step after a quarter round ends early.
const LOSE: f64 = 0.1;
/// Probes may cost this share of the training time.
const PROBE_BUDGET: f64 = 0.02;
/// Steps between probes after the first lost one.
const FIRST_PAUSE: f64 = 16.0;
/// Pauses grow no longer than this much training time (unless the probes' cost asks for
/// more), so that a fit notices within a fraction of a second that a busy core came free.
const MAX_PAUSE_SECS: f64 = 0.2;

/// The pacer of one fit.
pub(crate) struct Pacer {
    /// Helpers a parallel round engages (0: this fit always runs serial).
    width: usize,
    parallel: bool,
    probing: bool,
    /// Current round: steps, seconds, and the leader-alone estimate of those seconds.
    steps: u32,
    wall: f64,
    alone: f64,
    /// Seconds per step of the last serial and parallel rounds.
    serial_step: Option<f64>,
    parallel_step: Option<f64>,
    /// Steps until the next probe, and the pause after a lost one.
    countdown: f64,
    pause: f64,
    /// Steps not to measure: the fit's first two (its buffers are touched for the first time,
    /// its threads start) and the first after helpers were engaged (they wake up cold).
    warming: u32,
}

impl Pacer {
    /// A pacer for steps that can use up to `width` helpers (from the work of one step).
    pub(crate) fn new(width: usize) -> Self {
        Pacer {
            width,
            parallel: width > 0,
            probing: false,
            steps: 0,
            wall: 0.0,
            alone: 0.0,
            serial_step: None,
            parallel_step: None,
            // The first round is followed by a serial probe at once.
            countdown: 0.0,
            pause: FIRST_PAUSE,
            warming: 2,
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
            if team.helpers() > before {
                self.warming = self.warming.max(1);
            }
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
        if self.warming > 0 {
            self.warming -= 1;
            return;
        }
        if self.parallel && helpers == 0 {
            // No core was free for a helper (other fits hold them): serial it is, for now.
            self.parallel = false;
            self.probing = false;
            self.countdown = self.pause;
            self.restart_round();
        }
        self.steps += 1;
        self.wall += wall;
        // What the step would have taken alone: its non-job part, plus the leader's estimate
        // for the jobs.
        self.alone += wall - jobs.wall + jobs.alone;
        let losing = self.probing
            && self.wall >= ROUND_SECS / 4.0
            && self
                .other_step()
                .is_some_and(|t| self.wall > (1.0 + LOSE) * t * f64::from(self.steps));
        if losing || self.wall >= ROUND_SECS {
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

    fn restart_round(&mut self) {
        self.steps = 0;
        self.wall = 0.0;
        self.alone = 0.0;
    }

    fn end_round(&mut self) {
        let steps = f64::from(self.steps);
        let per_step = self.wall / steps;
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
                let affordable = (slow - fast) * steps / (PROBE_BUDGET * fast);
                self.pause = (self.pause * 2.0)
                    .min(MAX_PAUSE_SECS / fast)
                    .max(affordable)
                    .max(FIRST_PAUSE);
                self.countdown = self.pause;
            }
        } else {
            let stalled = self.parallel && self.wall >= self.alone;
            if stalled || other.is_some_and(|t| per_step > t) {
                self.countdown = 0.0;
            }
            self.countdown -= steps;
            if self.countdown <= 0.0 {
                self.probing = true;
                self.parallel = !self.parallel;
            }
        }
        self.restart_round();
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
        let mut pacer = Pacer::new(1);
        let (mut modes, mut total) = (Vec::new(), 0.0);
        for i in 0..steps {
            let helpers = pacer.wanted(2);
            let (wall, est) = if helpers > 0 {
                (parallel(i), alone(i))
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
    fn a_stall_seen_by_the_leader_alone_sets_off_a_serial_probe() {
        // Parallel looks fine against its own past, but the leader's estimate says one
        // thread alone would have been faster: serial is measured, and wins.
        let (modes, _) = drive(3000, |_| 100e-6, |_| 120e-6, |_| 100e-6);
        assert!(share(&modes[500..]) < 0.1);
    }

    #[test]
    fn no_free_core_means_serial_and_no_width_means_never_parallel() {
        let mut pacer = Pacer::new(1);
        for _ in 0..10 {
            // The team could not engage a helper.
            pacer.record(1e-3, JobStats::default(), 0, true);
        }
        assert!(!pacer.parallel);
        let never = Pacer::new(0);
        assert_eq!(never.wanted(8), 0);
        // A cap of one thread leaves no room for helpers.
        assert_eq!(Pacer::new(3).wanted(1), 0);
        assert_eq!(Pacer::new(3).wanted(2), 1);
    }
}
