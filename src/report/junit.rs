//! `junit.xml`: the verdicts as JUnit test cases, for CI systems' test tabs.
//!
//! One `<testsuite>` per scenario (so a suite of scenarios is one file), one `<testcase>` per
//! verdict with `classname` = scenario and `name` = check id. A failed check is a `<failure>`
//! whose message carries the figure and the limit and whose text is a short, redacted evidence
//! excerpt; a not-applicable check is `<skipped>` with the reason. Written with quick-junit,
//! which escapes text and drops characters XML cannot hold.

use std::time::Duration;

use quick_junit::{
    NonSuccessKind, Property, Report as JUnitReport, TestCase, TestCaseStatus, TestSuite,
};

use super::redact::redact;
use super::{format_figure, Report};
use crate::checks::Outcome;

/// Evidence lines carried in a failure's text; the rest are in report.json.
const EVIDENCE_SHOWN: usize = 5;

/// The JUnit XML for `reports`, one test suite each.
pub fn junit_xml(reports: &[&Report]) -> String {
    let mut junit = JUnitReport::new("faultline");
    for report in reports {
        junit.add_test_suite(suite(report));
    }
    // Serializing to a String fails only on I/O, which a String cannot give.
    junit
        .to_string()
        .expect("serializing JUnit XML to a string cannot fail")
}

fn suite(report: &Report) -> TestSuite {
    let mut suite = TestSuite::new(report.scenario.as_str());
    suite.set_time(Duration::from_secs_f64(
        report.duration_ms.max(0.0) / 1000.0,
    ));
    suite.add_properties([
        Property::new("source", report.source.as_str()),
        Property::new("seed", report.seed.to_string()),
        Property::new("target", report.target.as_str()),
        Property::new("started_at", report.started_at.as_str()),
        Property::new("quick", report.quick.to_string()),
    ]);
    for v in &report.verdicts {
        let status = match v.outcome {
            Outcome::Pass => TestCaseStatus::success(),
            Outcome::Fail => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_type(v.id.as_str())
                    .set_message(format!(
                        "{} (figure {}, limit {})",
                        v.summary.trim(),
                        format_figure(v.figure, &v.unit),
                        format_figure(v.limit, &v.unit)
                    ))
                    .set_description(excerpt(&v.evidence));
                status
            }
            Outcome::NotApplicable => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(format!("not applicable: {}", v.summary.trim()));
                status
            }
        };
        let mut case = TestCase::new(v.id.as_str(), status);
        case.set_classname(report.scenario.as_str());
        suite.add_test_case(case);
    }
    suite
}

fn excerpt(evidence: &[String]) -> String {
    let mut text: Vec<String> = evidence
        .iter()
        .take(EVIDENCE_SHOWN)
        .map(|l| redact(l))
        .collect();
    if evidence.len() > EVIDENCE_SHOWN {
        text.push(format!(
            "… {} more in report.json",
            evidence.len() - EVIDENCE_SHOWN
        ));
    }
    text.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome::{Fail, NotApplicable, Pass};
    use crate::report::json::tests::report;

    #[test]
    fn each_verdict_is_a_testcase_and_failures_carry_figure_limit_and_evidence() {
        let mut report = report(&[
            ("sla.p95.fault", Fail),
            ("errors.rate.fault", Pass),
            ("errors.honest", NotApplicable),
        ]);
        report.verdicts[0]
            .evidence
            .push("<leak> sk-abcdef0123456789".into());
        let xml = junit_xml(&[&report]);
        let doc = roxmltree::Document::parse(&xml).unwrap();

        let suite = doc
            .descendants()
            .find(|n| n.has_tag_name("testsuite"))
            .unwrap();
        assert_eq!(suite.attribute("name"), Some("outage"));
        assert_eq!(suite.attribute("tests"), Some("3"));
        assert_eq!(suite.attribute("failures"), Some("1"));
        assert_eq!(suite.attribute("skipped"), Some("1"));

        let cases: Vec<_> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
        assert_eq!(
            names,
            ["sla.p95.fault", "errors.rate.fault", "errors.honest"]
        );
        assert!(cases
            .iter()
            .all(|c| c.attribute("classname") == Some("outage")));

        let failure = cases[0]
            .children()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some("sla.p95.fault summary | with a pipe (figure 9.8 s, limit 9 s)")
        );
        let text = failure.text().unwrap();
        assert!(text.starts_with("req-12000 flow=chat status=503"), "{text}");
        assert!(text.contains("<leak> sk-[redacted]"));
        assert!(cases[1].children().all(|n| !n.is_element()));
        let skipped = cases[2]
            .children()
            .find(|n| n.has_tag_name("skipped"))
            .unwrap();
        assert!(skipped
            .attribute("message")
            .unwrap()
            .starts_with("not applicable: errors.honest summary"));
    }

    #[test]
    fn a_suite_of_scenarios_is_one_file_with_a_testsuite_each() {
        let a = report(&[("x", Pass)]);
        let mut b = report(&[("x", Fail)]);
        b.scenario = "rate-limit".into();
        let xml = junit_xml(&[&a, &b]);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("tests"), Some("2"));
        assert_eq!(root.attribute("failures"), Some("1"));
        let suites: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name("testsuite"))
            .map(|n| n.attribute("name").unwrap())
            .collect();
        assert_eq!(suites, ["outage", "rate-limit"]);
    }
}
