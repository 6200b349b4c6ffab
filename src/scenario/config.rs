//! `faultline.toml`: the file users keep in their own repository to describe their service
//! once: how to start it or where it runs, its environment, its API, and how it speaks (the
//! service profile: its log schema, its metrics and what each figure counts, its trace
//! attributes, its tools' shapes). Every scenario run with that config tests their service
//! instead of the reference target.

use std::path::PathBuf;

use crate::scenario::api::Api;
use crate::scenario::model::{Plan, TargetSpec};
use crate::scenario::parse::MetricsEndpoint;
use crate::scenario::profile::ServiceProfile;

/// What a `faultline.toml` says.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it came from, for messages.
    pub source: String,
    pub target: Option<TargetSpec>,
    pub api: Option<Api>,
    /// `[logs]`, `[metrics]` and `[traces]`: the keys it sets, with where.
    pub profile: ServiceProfile,
    /// `[metrics] path` and `format`: where the service serves its metrics.
    pub metrics: Option<MetricsEndpoint>,
    /// `[logs] file`: the file the service writes its log lines to (from the file's folder).
    pub log_file: Option<PathBuf>,
    /// `[tools.*]`: the shapes of the service's write tools.
    pub tools: crate::scenario::parse::Tools,
    /// `[network] allow`: address ranges beyond loopback a distributed run's workers may send
    /// load to (empty: loopback only). Read by each worker from its own faultline.toml.
    pub network_allow: Vec<ipnet::IpNet>,
}

/// The name faultline looks for in the working directory.
pub const FILE_NAME: &str = "faultline.toml";

impl Plan {
    /// The plan with the config's target, API and service profile.
    ///
    /// A scenario that names its own target (`command` or `url`) keeps it; one written for the
    /// reference target gets the config's target, with the scenario's env entries added where
    /// the config does not set them, and where the config says the service keeps its metrics
    /// (`[metrics] path`, `format`, over `[target] metrics_path`) and logs (`[logs] file`,
    /// over `[target] log_file`). A scenario's own `[api]` wins over the config's. Profile
    /// keys go key by key: the scenario's explicit `[expect.logs|metrics|traces]` keys, then
    /// the config's, then the defaults.
    pub fn with_config(mut self, config: &Config) -> Result<Plan, String> {
        self = self.with_tools(&config.tools);
        let scenario_names_target = self.target.command.is_some() || self.target.url.is_some();
        let config_names_target =
            config.target.is_some() || config.metrics.is_some() || config.log_file.is_some();
        if !scenario_names_target && config_names_target && !self.target.flaws.is_empty() {
            return Err(format!(
                "{}: switches on flaws of the reference target ({}), but {} names another \
                 target; run it without {}",
                self.source,
                self.target.flaws.join(", "),
                config.source,
                config.source
            ));
        }
        if !scenario_names_target {
            if let Some(target) = &config.target {
                let mut env = self.target.env.clone();
                env.extend(target.env.clone());
                self.target = TargetSpec {
                    env,
                    ..target.clone()
                };
            }
            if let Some(endpoint) = &config.metrics {
                self.target.metrics_path = Some(endpoint.path.value.clone());
                self.target.metrics_format = endpoint.format;
            }
            if let Some(file) = &config.log_file {
                self.target.log_file = Some(file.clone());
            }
        }
        // A scenario that describes its own API keeps it; one that left the defaults gets the
        // config's.
        let mut service = config.profile.clone();
        if let (Some(api), true) = (&config.api, self.api == Api::default()) {
            self.api = api.clone();
            service.api_source = Some(config.source.clone());
        }
        let merged = self.expect.profile.or(&service);
        merged.apply(&mut self.expect);
        Ok(self)
    }
}
