//! The capacity search as a pure state machine: it proposes the next arrival rate, is told
//! how the step at that rate came out ([`Class`]), and ends with a [`Conclusion`]. No runs,
//! no clocks: unit-tested over a pass/fail oracle.
//!
//! It grows the rate from `min`, doubling it (capped at `max`), until a step does not pass;
//! then it bisects between the highest passing rate and the lowest rate that did not pass
//! until the two are within the precision asked for, or the steps run out.
//!
//! A step at which the load generator itself fell behind is not the service's failure: the
//! search never goes above it (nothing there can be measured), but it may still bisect below
//! it, and it ends saying the knee is unknown above the generator's limit.

use serde::Serialize;

/// How much the rate grows after each passing step until one does not pass.
pub const GROWTH: f64 = 2.0;
/// Steps one search makes at most, growth and bisection together: enough for the widest span
/// allowed ([`MAX_GROWTH_STEPS`]) and a dozen halvings after it (a bracket of 2x down to
/// 0.05%), so the bound only stops a search asked for a precision finer than runs can tell.
pub const MAX_STEPS: usize = 30;
/// Steps the growth from `min` to `max` may take at most (1/s to 50,000/s takes 17).
pub const MAX_GROWTH_STEPS: usize = 18;

/// How close the highest passing and the lowest failing rate must come.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Precision {
    /// A share of the highest passing rate (0.1: within 10%).
    Relative(f64),
    /// Arrivals per second.
    Absolute(f64),
}

impl Precision {
    /// Whether `pass` and `fail` are close enough to stop.
    pub fn reached(self, pass: f64, fail: f64) -> bool {
        let gap = fail - pass;
        match self {
            Precision::Relative(share) => gap <= share * pass,
            Precision::Absolute(rate) => gap <= rate,
        }
    }

    /// `10%` or `2/s`, as the user wrote it.
    pub fn describe(self) -> String {
        match self {
            Precision::Relative(share) => format!("{}%", rate_text(share * 100.0)),
            Precision::Absolute(rate) => format!("{}/s", rate_text(rate)),
        }
    }
}

/// What the search is asked to find, checked by [`Bounds::new`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Bounds {
    pub min: f64,
    pub max: f64,
    pub precision: Precision,
}

impl Bounds {
    /// The bounds, or what is wrong with them in words naming the flag to change.
    pub fn new(min: f64, max: f64, precision: Precision, max_rate: f64) -> Result<Bounds, String> {
        // Written so NaN fails too.
        for (flag, rate) in [("--min", min), ("--max", max)] {
            if !(rate > 0.0 && rate <= max_rate) {
                return Err(format!(
                    "{flag} is {rate}; it must be more than 0 and at most {max_rate} arrivals \
                     per second"
                ));
            }
        }
        if min > max {
            return Err(format!(
                "--min {min} is above --max {max}; give a --min at or below --max"
            ));
        }
        let growth_steps = growth_steps(min, max);
        if growth_steps > MAX_GROWTH_STEPS {
            return Err(format!(
                "--min {min} and --max {max} are {growth_steps} doublings apart, more than the \
                 {MAX_GROWTH_STEPS} a search makes; raise --min or lower --max"
            ));
        }
        match precision {
            Precision::Relative(share) if !(share > 0.0 && share < 1.0) => Err(format!(
                "--precision {} must be more than 0% and less than 100%, e.g. 10%",
                precision.describe()
            )),
            Precision::Absolute(rate) if !(rate > 0.0 && rate.is_finite()) => Err(format!(
                "--precision {rate} must be more than 0 arrivals per second, e.g. 2 (or a \
                 share: 10%)"
            )),
            _ => Ok(Bounds {
                min,
                max,
                precision,
            }),
        }
    }
}

/// Steps from `min` to `max`, doubling, the first and last included.
fn growth_steps(min: f64, max: f64) -> usize {
    let mut rate = min;
    let mut steps = 1;
    while rate < max {
        rate = (rate * GROWTH).min(max);
        steps += 1;
    }
    steps
}

/// How one step counts in the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Every gate passed and the load asked for was applied.
    Pass,
    /// A gate failed (or the service held so many requests unanswered that arrivals had to be
    /// dropped): the service did not take this rate.
    Fail,
    /// The load generator could not apply this rate: nothing at or above it can be measured.
    GeneratorLimit,
    /// The step could not be judged (interrupted, not run, too short): the search stops.
    Unjudged,
}

/// How a search ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Conclusion {
    /// The knee: `highest_pass` passed, `lowest_fail` did not. `precise` is false when the
    /// steps ran out before the two came within the precision asked for.
    Knee {
        highest_pass: f64,
        lowest_fail: f64,
        precise: bool,
    },
    /// Even `--max` passed: the knee is above it.
    MaxPassed { max: f64 },
    /// Even `--min` failed: the knee is below it.
    MinFailed { min: f64 },
    /// The generator could not apply `limit`: the service passed up to `highest_pass` (none
    /// when `limit` was `--min`), and where it would fail above the limit is unknown.
    /// `lowest_fail` is a failing rate seen above the limit's bracket, if any.
    GeneratorLimit {
        highest_pass: Option<f64>,
        limit: f64,
        lowest_fail: Option<f64>,
    },
    /// A step at `at` could not be judged, so the search stopped with what it had.
    Unfinished {
        highest_pass: Option<f64>,
        lowest_fail: Option<f64>,
        at: f64,
    },
}

/// What to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Run a step at this many arrivals per second.
    Run(f64),
    Done(Conclusion),
}

/// The search's state: what passed, what bounds it from above, and how many steps were made.
#[derive(Clone, Debug)]
pub struct Search {
    bounds: Bounds,
    steps: usize,
    highest_pass: Option<f64>,
    lowest_fail: Option<f64>,
    /// The lowest rate that did not pass (a failure or the generator's limit): bisection's top.
    ceiling: Option<(f64, Class)>,
    unjudged_at: Option<f64>,
}

impl Search {
    pub fn new(bounds: Bounds) -> Search {
        Search {
            bounds,
            steps: 0,
            highest_pass: None,
            lowest_fail: None,
            ceiling: None,
            unjudged_at: None,
        }
    }

    /// Steps recorded so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The next rate to run, or how the search ended.
    pub fn next(&self) -> Next {
        if let Some(at) = self.unjudged_at {
            return Next::Done(Conclusion::Unfinished {
                highest_pass: self.highest_pass,
                lowest_fail: self.lowest_fail,
                at,
            });
        }
        let Some((top, class)) = self.ceiling else {
            return match self.highest_pass {
                None => Next::Run(self.bounds.min),
                Some(pass) if pass >= self.bounds.max => Next::Done(Conclusion::MaxPassed {
                    max: self.bounds.max,
                }),
                Some(pass) if self.steps >= MAX_STEPS => Next::Done(Conclusion::Unfinished {
                    highest_pass: Some(pass),
                    lowest_fail: None,
                    at: pass,
                }),
                Some(pass) => Next::Run((pass * GROWTH).min(self.bounds.max)),
            };
        };
        let Some(pass) = self.highest_pass else {
            return Next::Done(match class {
                Class::GeneratorLimit => Conclusion::GeneratorLimit {
                    highest_pass: None,
                    limit: top,
                    lowest_fail: self.lowest_fail,
                },
                _ => Conclusion::MinFailed { min: top },
            });
        };
        let precise = self.bounds.precision.reached(pass, top);
        if !precise && self.steps < MAX_STEPS {
            return Next::Run((pass + top) / 2.0);
        }
        Next::Done(match class {
            Class::GeneratorLimit => Conclusion::GeneratorLimit {
                highest_pass: Some(pass),
                limit: top,
                lowest_fail: self.lowest_fail,
            },
            _ => Conclusion::Knee {
                highest_pass: pass,
                lowest_fail: top,
                precise,
            },
        })
    }

    /// Stops the search before the step at `rate` (an interrupt): it ends unfinished there.
    pub fn stop(&mut self, rate: f64) {
        self.unjudged_at = Some(rate);
    }

    /// Records how the step at `rate` (the one [`Search::next`] proposed) came out.
    pub fn record(&mut self, rate: f64, class: Class) {
        self.steps += 1;
        match class {
            Class::Pass => {
                self.highest_pass = Some(self.highest_pass.map_or(rate, |p| p.max(rate)));
            }
            Class::Fail | Class::GeneratorLimit => {
                if class == Class::Fail {
                    self.lowest_fail = Some(self.lowest_fail.map_or(rate, |f| f.min(rate)));
                }
                if self.ceiling.is_none_or(|(top, _)| rate < top) {
                    self.ceiling = Some((rate, class));
                }
            }
            Class::Unjudged => self.unjudged_at = Some(rate),
        }
    }
}

/// A rate as people write it: `40`, `12.5`, `0.75`.
pub fn rate_text(rate: f64) -> String {
    let text = format!("{rate:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(min: f64, max: f64, precision: Precision) -> Bounds {
        Bounds::new(min, max, precision, 50_000.0).unwrap()
    }

    /// Runs a whole search against `oracle`; returns the rates tried and the conclusion.
    fn search(bounds: Bounds, mut oracle: impl FnMut(f64) -> Class) -> (Vec<f64>, Conclusion) {
        let mut search = Search::new(bounds);
        let mut tried = Vec::new();
        loop {
            match search.next() {
                Next::Run(rate) => {
                    assert!(tried.len() < MAX_STEPS, "the search must end: {tried:?}");
                    tried.push(rate);
                    search.record(rate, oracle(rate));
                }
                Next::Done(conclusion) => return (tried, conclusion),
            }
        }
    }

    fn below(knee: f64) -> impl FnMut(f64) -> Class {
        move |rate| {
            if rate <= knee {
                Class::Pass
            } else {
                Class::Fail
            }
        }
    }

    #[test]
    fn it_doubles_then_bisects_to_the_knee_within_the_precision() {
        let (tried, conclusion) =
            search(bounds(5.0, 1000.0, Precision::Relative(0.1)), below(33.0));
        assert_eq!(tried[..5], [5.0, 10.0, 20.0, 40.0, 30.0]);
        let Conclusion::Knee {
            highest_pass,
            lowest_fail,
            precise: true,
        } = conclusion
        else {
            panic!("{conclusion:?}");
        };
        assert!(highest_pass <= 33.0 && lowest_fail > 33.0, "{conclusion:?}");
        assert!(lowest_fail - highest_pass <= 0.1 * highest_pass);
        // 4 growth steps and 3 halvings of 20..40 (to 2.5/s, under 10% of 30).
        assert_eq!(tried.len(), 7, "{tried:?}");
    }

    #[test]
    fn an_absolute_precision_is_kept_for_every_knee() {
        for knee in [1.3, 7.0, 99.9, 512.0, 4_321.0] {
            let (_, conclusion) =
                search(bounds(1.0, 10_000.0, Precision::Absolute(0.5)), below(knee));
            let Conclusion::Knee {
                highest_pass,
                lowest_fail,
                precise: true,
            } = conclusion
            else {
                panic!("{knee}: {conclusion:?}");
            };
            assert!(
                highest_pass <= knee && knee < lowest_fail,
                "{knee}: {conclusion:?}"
            );
            assert!(lowest_fail - highest_pass <= 0.5, "{knee}: {conclusion:?}");
        }
    }

    #[test]
    fn max_passing_and_min_failing_end_the_search_at_once() {
        let (tried, conclusion) = search(bounds(10.0, 50.0, Precision::Relative(0.1)), below(1e9));
        assert_eq!(tried, [10.0, 20.0, 40.0, 50.0]);
        assert_eq!(conclusion, Conclusion::MaxPassed { max: 50.0 });

        let (tried, conclusion) = search(bounds(10.0, 50.0, Precision::Relative(0.1)), below(1.0));
        assert_eq!(tried, [10.0]);
        assert_eq!(conclusion, Conclusion::MinFailed { min: 10.0 });
    }

    #[test]
    fn the_generator_limit_is_never_searched_above_and_is_never_a_pass() {
        // Passes everywhere the generator can go; the generator tops out at 100/s.
        let (tried, conclusion) = search(bounds(10.0, 1000.0, Precision::Relative(0.1)), |rate| {
            if rate >= 100.0 {
                Class::GeneratorLimit
            } else {
                Class::Pass
            }
        });
        // Growth stopped at the first rate the generator could not apply (160/s); every
        // step after it is below it, bisecting down to where the generator keeps up.
        let first_limit = tried.iter().position(|&r| r >= 100.0).unwrap();
        assert_eq!(tried[first_limit], 160.0, "{tried:?}");
        assert!(
            tried[first_limit + 1..].iter().all(|&r| r < 160.0),
            "{tried:?}"
        );
        let Conclusion::GeneratorLimit {
            highest_pass: Some(pass),
            limit,
            lowest_fail: None,
        } = conclusion
        else {
            panic!("{conclusion:?}");
        };
        assert!(
            limit >= 100.0 && limit - pass <= 0.1 * pass,
            "{conclusion:?}"
        );
        assert!(pass < 100.0, "{conclusion:?}");

        // At --min already: nothing was measured.
        let (tried, conclusion) = search(bounds(10.0, 1000.0, Precision::Relative(0.1)), |_| {
            Class::GeneratorLimit
        });
        assert_eq!(tried, [10.0]);
        assert_eq!(
            conclusion,
            Conclusion::GeneratorLimit {
                highest_pass: None,
                limit: 10.0,
                lowest_fail: None
            }
        );
    }

    #[test]
    fn a_failure_below_the_generator_limit_is_a_knee() {
        // 80 fails, 160 is beyond the generator: the bisection below finds the knee at 50.
        let (_, conclusion) = search(bounds(10.0, 1000.0, Precision::Relative(0.1)), |rate| {
            if rate >= 150.0 {
                Class::GeneratorLimit
            } else if rate > 50.0 {
                Class::Fail
            } else {
                Class::Pass
            }
        });
        let Conclusion::Knee {
            highest_pass,
            lowest_fail,
            ..
        } = conclusion
        else {
            panic!("{conclusion:?}");
        };
        assert!(highest_pass <= 50.0 && lowest_fail > 50.0, "{conclusion:?}");
    }

    #[test]
    fn an_unjudged_step_stops_the_search_with_what_it_had() {
        let (tried, conclusion) = search(bounds(10.0, 1000.0, Precision::Relative(0.1)), |rate| {
            if rate >= 40.0 {
                Class::Unjudged
            } else {
                Class::Pass
            }
        });
        assert_eq!(tried, [10.0, 20.0, 40.0]);
        assert_eq!(
            conclusion,
            Conclusion::Unfinished {
                highest_pass: Some(20.0),
                lowest_fail: None,
                at: 40.0
            }
        );
    }

    #[test]
    fn a_precision_finer_than_the_steps_allow_ends_with_an_imprecise_knee() {
        let (tried, conclusion) = search(
            bounds(1.0, 50_000.0, Precision::Absolute(1e-9)),
            below(30_000.0),
        );
        assert_eq!(tried.len(), MAX_STEPS);
        assert!(
            matches!(conclusion, Conclusion::Knee { precise: false, highest_pass, lowest_fail }
                if highest_pass <= 30_000.0 && lowest_fail > 30_000.0),
            "{conclusion:?}"
        );
    }

    #[test]
    fn bad_bounds_are_refused_naming_the_flag() {
        let p = Precision::Relative(0.1);
        let err = |min, max, p| Bounds::new(min, max, p, 50_000.0).unwrap_err();
        assert!(err(20.0, 10.0, p).contains("--min 20 is above --max 10"));
        assert!(err(0.0, 10.0, p).contains("--min is 0; it must be more than 0"));
        assert!(err(-1.0, 10.0, p).contains("--min"));
        assert!(err(1.0, f64::NAN, p).contains("--max is NaN"));
        assert!(err(1.0, 60_000.0, p).contains("at most 50000"));
        assert!(err(0.0001, 50_000.0, p).contains("doublings apart"));
        assert!(err(1.0, 10.0, Precision::Relative(1.5)).contains("less than 100%"));
        assert!(err(1.0, 10.0, Precision::Absolute(0.0)).contains("more than 0 arrivals"));
        // The widest span that fits, the defaults' (1/s to 50,000/s), is accepted.
        assert!(Bounds::new(1.0, 50_000.0, p, 50_000.0).is_ok());
        assert!(Bounds::new(10.0, 10.0, p, 50_000.0).is_ok());
    }

    #[test]
    fn rates_and_precisions_read_as_written() {
        assert_eq!(rate_text(40.0), "40");
        assert_eq!(rate_text(12.5), "12.5");
        assert_eq!(rate_text(0.75), "0.75");
        assert_eq!(Precision::Relative(0.1).describe(), "10%");
        assert_eq!(Precision::Absolute(2.0).describe(), "2/s");
    }
}
