//! `faultline.toml`: the file users keep in their own repository to describe their target
//! (how to start it or where it runs, its environment, logs, metrics) and its API. Every
//! scenario run with that config tests their service instead of the reference target.

use crate::scenario::api::Api;
use crate::scenario::model::{Plan, TargetSpec};

/// What a `faultline.toml` says.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it came from, for messages.
    pub source: String,
    pub target: Option<TargetSpec>,
    pub api: Option<Api>,
    /// `[tools.*]`: the shapes of the service's write tools.
    pub tools: crate::scenario::parse::Tools,
}

/// The name faultline looks for in the working directory.
pub const FILE_NAME: &str = "faultline.toml";

impl Plan {
    /// The plan with the config's target and API. A scenario that names its own target
    /// (`command` or `url`) keeps it; one written for the reference target gets the config's
    /// target, with the scenario's env entries added where the config does not set them. The
    /// same goes for the API: a scenario's own `[api]` wins over the config's.
    pub fn with_config(mut self, config: &Config) -> Result<Plan, String> {
        self = self.with_tools(&config.tools);
        let scenario_names_target = self.target.command.is_some() || self.target.url.is_some();
        if let (Some(target), false) = (&config.target, scenario_names_target) {
            if !self.target.flaws.is_empty() {
                return Err(format!(
                    "{}: switches on flaws of the reference target ({}), but {} names another \
                     target; run it without {}",
                    self.source,
                    self.target.flaws.join(", "),
                    config.source,
                    config.source
                ));
            }
            let mut env = self.target.env.clone();
            env.extend(target.env.clone());
            self.target = TargetSpec {
                env,
                ..target.clone()
            };
        }
        // A scenario that describes its own API keeps it; one that left the defaults gets the
        // config's.
        if let (Some(api), true) = (&config.api, self.api == Api::default()) {
            self.api = api.clone();
        }
        Ok(self)
    }
}
