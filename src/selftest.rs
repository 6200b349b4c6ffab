//! The rows of `faultline selftest`: the reference target's gate-honesty matrix
//! ([`crate::suite::MATRIX`]) and, with `--example DIR`, an example service's rows read from
//! its `selftest.toml`: each built-in scenario that applies must pass the healthy service, and
//! each planted defect (switched on through the environment) must fail the gates named for it.
//!
//! A row is run as a child `faultline scenario …` process (see [`crate::suite::run_in_processes`]);
//! the environment a defect names is set on that child, whose target inherits it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::suite::{judge, EntryOutcome, MatrixRow};

/// One row of a selftest: what runs, and what must fail (nothing for a healthy row).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Whose row: `reference` or the example's directory.
    pub subject: String,
    /// `(healthy)`, the flaw or the defect.
    pub variant: String,
    pub scenario: String,
    /// The `faultline` arguments (without `--out`).
    pub args: Vec<String>,
    /// Set on the child run (and so on the target it starts).
    pub env: Vec<(String, String)>,
    pub must_fail: Vec<String>,
}

impl Row {
    /// The reference target's row for `row`, in full form or `--quick`.
    pub fn reference(row: &MatrixRow, quick: bool) -> Row {
        Row {
            subject: "reference".into(),
            variant: row.flaw.unwrap_or("(healthy)").into(),
            scenario: row.scenario.into(),
            args: row.args(quick),
            env: Vec::new(),
            must_fail: row.must_fail.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A unique label, also the name of the row's report directory.
    pub fn label(&self) -> String {
        let variant = self.variant.trim_matches(['(', ')']);
        if self.subject == "reference" {
            format!("{}+{variant}", self.scenario)
        } else {
            let subject = Path::new(&self.subject)
                .file_name()
                .map_or(self.subject.clone(), |n| n.to_string_lossy().into_owned());
            format!("{subject}+{}+{variant}", self.scenario)
        }
    }

    /// `None` when the run came out as this row demands; else why not.
    pub fn judge(&self, outcome: &EntryOutcome) -> Option<String> {
        judge(&self.must_fail, outcome)
    }
}

/// Every row of the reference target's matrix.
pub fn reference_rows(quick: bool) -> Vec<Row> {
    crate::suite::MATRIX
        .iter()
        .map(|row| Row::reference(row, quick))
        .collect()
}

/// An example's `selftest.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleFile {
    /// Built-in scenarios that apply: each must pass the healthy service.
    scenarios: Vec<String>,
    /// The other built-in scenarios, each with why it does not apply.
    #[serde(default)]
    left_out: BTreeMap<String, String>,
    #[serde(default)]
    defect: Vec<Defect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defect {
    name: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    scenario: String,
    gates: Vec<String>,
}

/// The rows `dir/selftest.toml` asks for, run through `dir/faultline.toml`. Errors name the
/// file (and line:column for a syntax error) and what to change.
pub fn example_rows(dir: &Path, quick: bool) -> Result<Vec<Row>, String> {
    let file = dir.join("selftest.toml");
    let text = std::fs::read_to_string(&file).map_err(|e| {
        format!(
            "{}: {e}; --example takes a directory holding selftest.toml and faultline.toml",
            file.display()
        )
    })?;
    let parsed: ExampleFile =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let config = dir.join("faultline.toml");
    if !config.is_file() {
        return Err(format!(
            "{}: missing; the example's rows run through its service profile",
            config.display()
        ));
    }
    let built_in = crate::scenario::catalog::names();
    let known = |name: &str, what: &str| {
        if built_in.contains(&name) {
            Ok(())
        } else {
            Err(format!(
                "{}: {what} {name:?} is not a built-in scenario (they are: {})",
                file.display(),
                built_in.join(", ")
            ))
        }
    };
    for name in &parsed.scenarios {
        known(name, "scenarios lists")?;
    }
    for name in parsed.left_out.keys() {
        known(name, "[left_out] names")?;
        if parsed.scenarios.contains(name) {
            return Err(format!(
                "{}: {name:?} is both in scenarios and in [left_out]; keep one",
                file.display()
            ));
        }
    }
    // Every built-in scenario is either run or left out with a reason: a new scenario cannot
    // slip past an example unnoticed.
    if let Some(missing) = built_in
        .iter()
        .find(|n| !parsed.scenarios.iter().any(|s| s == *n) && !parsed.left_out.contains_key(**n))
    {
        return Err(format!(
            "{}: the built-in scenario {missing:?} is neither in scenarios nor in [left_out]; add \
             it to one (with why it does not apply)",
            file.display()
        ));
    }
    let subject = dir.display().to_string();
    let args = |scenario: &str| {
        let mut args = vec![
            "scenario".to_string(),
            scenario.to_string(),
            "--config".to_string(),
            config.display().to_string(),
        ];
        if quick {
            args.push("--quick".into());
        }
        args
    };
    let mut rows: Vec<Row> = parsed
        .scenarios
        .iter()
        .map(|scenario| Row {
            subject: subject.clone(),
            variant: "(healthy)".into(),
            scenario: scenario.clone(),
            args: args(scenario),
            env: Vec::new(),
            must_fail: Vec::new(),
        })
        .collect();
    for defect in parsed.defect {
        known(&defect.scenario, &format!("defect {:?} names", defect.name))?;
        if defect.gates.is_empty() {
            return Err(format!(
                "{}: defect {:?} names no gate; set gates = [\"the.check\"] that must fail",
                file.display(),
                defect.name
            ));
        }
        rows.push(Row {
            subject: subject.clone(),
            variant: defect.name.clone(),
            scenario: defect.scenario.clone(),
            args: args(&defect.scenario),
            env: defect.env.into_iter().collect(),
            must_fail: defect.gates,
        });
    }
    Ok(rows)
}

/// The example directories given, each resolved as given (relative to the working directory).
pub fn all_example_rows(dirs: &[PathBuf], quick: bool) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for dir in dirs {
        rows.extend(example_rows(dir, quick)?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(text: &str) -> Result<Vec<Row>, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("selftest.toml"), text).unwrap();
        std::fs::write(dir.path().join("faultline.toml"), "").unwrap();
        example_rows(dir.path(), true)
    }

    fn all_but(run: &[&str]) -> String {
        let left: Vec<String> = crate::scenario::catalog::names()
            .into_iter()
            .filter(|n| !run.contains(n))
            .map(|n| format!("{n} = \"does not apply\""))
            .collect();
        format!(
            "scenarios = [{}]\n[left_out]\n{}\n",
            run.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            left.join("\n")
        )
    }

    #[test]
    fn an_example_gives_a_healthy_row_per_scenario_and_a_row_per_defect() {
        let text = all_but(&["outage", "flaky"])
            + "[[defect]]\nname = \"no-retry\"\nenv = { EXAMPLE_DEFECTS = \"no-retry\" }\n\
               scenario = \"flaky\"\ngates = [\"retries.retryable\"]\n";
        let rows = example(&text).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[0].must_fail.is_empty());
        assert!(rows[0].args.contains(&"--quick".to_string()));
        assert!(rows[0].args.contains(&"--config".to_string()));
        assert_eq!(rows[2].variant, "no-retry");
        assert_eq!(
            rows[2].env,
            [("EXAMPLE_DEFECTS".to_string(), "no-retry".to_string())]
        );
        assert_eq!(rows[2].must_fail, ["retries.retryable"]);
        assert!(
            rows[2].label().ends_with("+flaky+no-retry"),
            "{}",
            rows[2].label()
        );
    }

    #[test]
    fn a_scenario_neither_run_nor_left_out_is_an_error_naming_it() {
        let error = example("scenarios = [\"outage\"]\n").unwrap_err();
        assert!(error.contains("selftest.toml"), "{error}");
        assert!(
            error.contains("neither in scenarios nor in [left_out]"),
            "{error}"
        );
    }

    #[test]
    fn unknown_names_and_fields_are_errors_naming_the_file() {
        let error = example(&(all_but(&["outage"]) + "extra = 1\n")).unwrap_err();
        assert!(
            error.contains("selftest.toml") && error.contains("extra"),
            "{error}"
        );
        let error =
            example(&all_but(&["outage"]).replace("\"outage\"", "\"outagee\"")).unwrap_err();
        assert!(
            error.contains("\"outagee\" is not a built-in scenario"),
            "{error}"
        );
        let text =
            all_but(&["outage"]) + "[[defect]]\nname = \"x\"\nscenario = \"outage\"\ngates = []\n";
        assert!(example(&text).unwrap_err().contains("names no gate"));
    }

    #[test]
    fn the_shipped_examples_selftest_files_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for name in ["python-fastapi", "node-express", "rust-axum"] {
            let rows = example_rows(&root.join(name), false).unwrap();
            assert!(rows.iter().any(|r| !r.must_fail.is_empty()), "{name}");
        }
    }
}
