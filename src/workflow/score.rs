//! From the steps' results to a score 0–100, a decision and the reasons, each naming the number
//! that decided. Every factor scores 0–100; the score is their weighted mean over the factors
//! that ran (a skipped step neither helps nor hurts); the bands give a decision, and rules can
//! only make it stricter.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::config::{Condition, Decision, WorkflowConfig};

/// What liveness found.
#[derive(Debug, Clone)]
pub struct LivenessOutcome {
    /// The verdict.
    pub is_live: bool,
    /// Confidence in the verdict, 0–1.
    pub confidence: f32,
    /// `none`, `screen`, `paper`, `mask`, `deepfake` or `unknown`.
    pub spoof_type: String,
}

/// What the document steps (OCR, validation) found.
#[derive(Debug, Clone, Default)]
pub struct DocumentOutcome {
    /// Whether a document was read at all.
    pub found: bool,
    /// The document's confidence, 0–1 (validation's when it ran, else OCR's).
    pub confidence: f32,
    /// Names of the MRZ check digits that failed (empty when all held or no MRZ).
    pub failed_checksums: Vec<String>,
    /// The expiry date when it has passed (ISO 8601).
    pub expired_on: Option<String>,
    /// The holder's age in years, when the birth date was read.
    pub age_years: Option<u32>,
    /// Mandatory fields that were not read.
    pub missing_fields: Vec<String>,
}

/// What face match found.
#[derive(Debug, Clone)]
pub struct FaceOutcome {
    /// Selfie–portrait similarity, 0–1.
    pub similarity: f32,
}

/// What the KYA checks found.
#[derive(Debug, Clone, Default)]
pub struct KyaOutcome {
    /// Checks that passed.
    pub passed: Vec<String>,
    /// Checks that failed, with why.
    pub failed: Vec<String>,
    /// Checks that could not run (offline, not configured, no input).
    pub skipped: Vec<String>,
}

/// What the dedup step found.
#[derive(Debug, Clone, Default)]
pub struct DedupOutcome {
    /// Enrolled faces of other subjects at or above the threshold, best first.
    pub matches: Vec<crate::faces::Candidate>,
    /// The threshold applied.
    pub threshold: f32,
}

/// The results of the steps that ran (`None`: the step did not run).
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    /// Dedup.
    pub dedup: Option<DedupOutcome>,
    /// Liveness.
    pub liveness: Option<LivenessOutcome>,
    /// Document.
    pub document: Option<DocumentOutcome>,
    /// Face match.
    pub face_match: Option<FaceOutcome>,
    /// KYA.
    pub kya: Option<KyaOutcome>,
}

/// One factor of the score.
#[derive(Debug, Clone, Serialize)]
pub struct Factor {
    /// 0–100.
    pub score: f32,
    /// The configured weight.
    pub weight: u32,
    /// What the factor saw.
    pub details: Value,
}

/// Score, decision, factors and reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// 0–100.
    pub score: u32,
    /// The decision after bands and rules.
    pub decision: Decision,
    /// Each factor that counted.
    pub factors: BTreeMap<&'static str, Factor>,
    /// Why, in words with the deciding numbers.
    pub reasons: Vec<String>,
}

/// Scores `outcomes` under `config`.
pub fn score(config: &WorkflowConfig, outcomes: &Outcomes) -> Verdict {
    let t = &config.thresholds;
    let w = &config.weights;
    let mut factors = BTreeMap::new();
    let mut reasons = Vec::new();
    if let Some(l) = &outcomes.liveness {
        let p_live = if l.is_live {
            l.confidence
        } else {
            1.0 - l.confidence
        };
        if !l.is_live {
            reasons.push(format!(
                "liveness failed: spoof_type {} (confidence {:.2})",
                l.spoof_type, l.confidence
            ));
        } else if l.confidence < t.liveness {
            reasons.push(format!(
                "liveness confidence {:.2} < {:.2} threshold",
                l.confidence, t.liveness
            ));
        }
        let details =
            json!({ "is_live": l.is_live, "confidence": l.confidence, "spoof_type": l.spoof_type });
        factors.insert("liveness", factor(p_live, w.liveness, details));
    }
    if let Some(d) = &outcomes.document {
        if !d.found {
            reasons.push("no document found".into());
        } else if d.confidence < t.ocr_confidence {
            reasons.push(format!(
                "document confidence {:.2} < {:.2} threshold",
                d.confidence, t.ocr_confidence
            ));
        }
        if !d.failed_checksums.is_empty() {
            reasons.push(format!(
                "MRZ checksum fail ({})",
                d.failed_checksums.join(", ")
            ));
        }
        if let Some(date) = &d.expired_on {
            reasons.push(format!("document expired on {date}"));
        }
        if !d.missing_fields.is_empty() {
            reasons.push(format!(
                "mandatory fields not read: {}",
                d.missing_fields.join(", ")
            ));
        }
        let value = if d.found { d.confidence } else { 0.0 };
        let details = json!({
            "found": d.found,
            "confidence": d.confidence,
            "failed_checksums": d.failed_checksums,
            "expired_on": d.expired_on,
            "missing_fields": d.missing_fields,
        });
        factors.insert("document", factor(value, w.document, details));
    }
    if let Some(f) = &outcomes.face_match {
        let matched = f.similarity >= t.face_match;
        // A match scores full marks; below the threshold at most half, shrinking with similarity.
        let value = if matched {
            1.0
        } else {
            0.5 * f.similarity.max(0.0) / t.face_match.max(f32::EPSILON)
        };
        if !matched {
            reasons.push(format!(
                "similarity {:.2} < {:.2} threshold",
                f.similarity, t.face_match
            ));
        }
        let details =
            json!({ "similarity": f.similarity, "threshold": t.face_match, "match": matched });
        factors.insert("face_match", factor(value, w.face_match, details));
    }
    if let Some(k) = &outcomes.kya {
        let ran = k.passed.len() + k.failed.len();
        for f in &k.failed {
            reasons.push(format!("KYA: {f}"));
        }
        let details = json!({ "passed": k.passed, "failed": k.failed, "skipped": k.skipped });
        // All checks skipped: the factor says nothing, so it does not count.
        if ran > 0 {
            let value = k.passed.len() as f32 / ran as f32;
            factors.insert("kya", factor(value, w.kya, details));
        }
    }
    if let Some(d) = &outcomes.dedup {
        for m in &d.matches {
            reasons.push(format!(
                "face already enrolled under subject {} (face {}{}) at similarity {:.2} ≥ {:.2}",
                m.subject_id,
                m.face_id,
                m.job_id
                    .as_deref()
                    .map(|j| format!(", job {j}"))
                    .unwrap_or_default(),
                m.similarity,
                d.threshold
            ));
        }
    }
    let total_weight: u32 = factors.values().map(|f| f.weight).sum();
    let score = if total_weight == 0 {
        0.0
    } else {
        factors
            .values()
            .map(|f| f.score * f.weight as f32)
            .sum::<f32>()
            / total_weight as f32
    };
    let score = score.round().clamp(0.0, 100.0) as u32;
    let mut decision = if score >= config.bands.accepted {
        Decision::Accepted
    } else if score >= config.bands.review {
        Decision::Review
    } else {
        Decision::Rejected
    };
    if decision != Decision::Accepted {
        reasons.push(format!(
            "score {score} < {} (accepted band)",
            config.bands.accepted
        ));
    }
    // The liveness threshold binds the decision, not only the reasons: a live verdict below it
    // is looked at by a person whatever the weights say (the operator floors this threshold).
    let weak_liveness = outcomes
        .liveness
        .as_ref()
        .is_some_and(|l| l.is_live && l.confidence < t.liveness);
    if weak_liveness && decision < Decision::Review {
        decision = Decision::Review;
        reasons.push("liveness below its threshold → review".into());
    }
    for rule in &config.rules {
        if holds(rule.when, rule.value, outcomes, config) && rule.decision > decision {
            decision = rule.decision;
            reasons.push(format!(
                "rule {}{} → {}",
                condition_name(rule.when),
                rule.value.map(|v| format!(" {v}")).unwrap_or_default(),
                rule.decision.name()
            ));
        }
    }
    Verdict {
        score,
        decision,
        factors,
        reasons,
    }
}

fn factor(value: f32, weight: u32, details: Value) -> Factor {
    Factor {
        score: (value.clamp(0.0, 1.0) * 1000.0).round() / 10.0,
        weight,
        details,
    }
}

fn holds(when: Condition, value: Option<u32>, o: &Outcomes, config: &WorkflowConfig) -> bool {
    let doc = o.document.as_ref();
    match when {
        Condition::DocumentExpired => doc.is_some_and(|d| d.expired_on.is_some()),
        Condition::AgeBelow => doc
            .and_then(|d| d.age_years)
            .zip(value)
            .is_some_and(|(age, min)| age < min),
        Condition::SpoofDetected => o
            .liveness
            .as_ref()
            .is_some_and(|l| !l.is_live || l.spoof_type != "none"),
        Condition::MrzChecksumFailed => doc.is_some_and(|d| !d.failed_checksums.is_empty()),
        Condition::FaceMismatch => o
            .face_match
            .as_ref()
            .is_some_and(|f| f.similarity < config.thresholds.face_match),
        Condition::MandatoryFieldMissing => {
            doc.is_some_and(|d| !d.found || !d.missing_fields.is_empty())
        }
        Condition::KyaFailed => o.kya.as_ref().is_some_and(|k| !k.failed.is_empty()),
        Condition::DuplicateFace => o.dedup.as_ref().is_some_and(|d| !d.matches.is_empty()),
    }
}

fn condition_name(c: Condition) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Outcomes {
        Outcomes {
            dedup: None,
            liveness: Some(LivenessOutcome {
                is_live: true,
                confidence: 0.97,
                spoof_type: "none".into(),
            }),
            document: Some(DocumentOutcome {
                found: true,
                confidence: 0.95,
                age_years: Some(40),
                ..Default::default()
            }),
            face_match: Some(FaceOutcome { similarity: 0.91 }),
            kya: Some(KyaOutcome {
                passed: vec!["email_syntax".into(), "name_coherence".into()],
                skipped: vec!["email_mx".into()],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_clean_applicant_is_accepted_with_the_weighted_score() {
        let v = score(&WorkflowConfig::default(), &good());
        // 0.3·97 + 0.25·95 + 0.4·100 + 0.05·100 = 97.85
        assert_eq!(v.score, 98);
        assert_eq!(v.decision, Decision::Accepted);
        assert!(v.reasons.is_empty(), "{:?}", v.reasons);
        assert_eq!(v.factors["face_match"].weight, 40);
    }

    #[test]
    fn another_person_is_rejected_with_the_similarity_reason() {
        let mut o = good();
        o.face_match = Some(FaceOutcome { similarity: 0.21 });
        let v = score(&WorkflowConfig::default(), &o);
        assert_eq!(v.decision, Decision::Rejected);
        assert!(
            v.reasons
                .iter()
                .any(|r| r == "similarity 0.21 < 0.75 threshold"),
            "{:?}",
            v.reasons
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.starts_with("rule face_mismatch")),
            "{:?}",
            v.reasons
        );
        assert!(v.score < 80);
    }

    #[test]
    fn rules_only_make_the_decision_stricter() {
        let mut o = good();
        o.document.as_mut().unwrap().expired_on = Some("2012-04-15".into());
        let v = score(&WorkflowConfig::default(), &o);
        assert_eq!(v.decision, Decision::Rejected);
        assert!(v
            .reasons
            .contains(&"document expired on 2012-04-15".to_string()));
        let mut o = good();
        o.document.as_mut().unwrap().failed_checksums = vec!["mrz_checksum_birth_date".into()];
        let v = score(&WorkflowConfig::default(), &o);
        assert_eq!(v.decision, Decision::Review, "{:?}", v.reasons);
        let mut o = good();
        o.document.as_mut().unwrap().age_years = Some(16);
        assert_eq!(
            score(&WorkflowConfig::default(), &o).decision,
            Decision::Rejected
        );
        // No rules: the bands alone decide.
        let config = WorkflowConfig {
            rules: vec![],
            ..Default::default()
        };
        assert_eq!(score(&config, &o).decision, Decision::Accepted);
    }

    #[test]
    fn skipped_steps_do_not_count() {
        let mut o = good();
        o.kya = Some(KyaOutcome {
            skipped: vec!["email_mx".into()],
            ..Default::default()
        });
        o.liveness = None;
        let v = score(&WorkflowConfig::default(), &o);
        assert!(!v.factors.contains_key("kya"));
        assert!(!v.factors.contains_key("liveness"));
        // (25·95 + 40·100) / 65 = 98.1
        assert_eq!(v.score, 98);
    }

    #[test]
    fn bands_follow_the_config() {
        let mut o = good();
        o.liveness.as_mut().unwrap().confidence = 0.6;
        o.document.as_mut().unwrap().confidence = 0.5;
        let v = score(&WorkflowConfig::default(), &o);
        // 0.3·60 + 0.25·50 + 40 + 5 = 75.5 → review, with the score named.
        assert_eq!((v.score, v.decision), (76, Decision::Review));
        assert!(v
            .reasons
            .contains(&"score 76 < 80 (accepted band)".to_string()));
    }

    #[test]
    fn a_duplicate_face_sends_to_review_naming_the_other_subject() {
        let mut o = good();
        o.dedup = Some(DedupOutcome {
            matches: vec![crate::faces::Candidate {
                face_id: "face_1".into(),
                subject_id: "customer-7".into(),
                job_id: Some("job_9".into()),
                similarity: 0.97,
                cosine: 0.66,
            }],
            threshold: 0.75,
        });
        let v = score(&WorkflowConfig::default(), &o);
        assert_eq!(v.decision, Decision::Review, "{:?}", v.reasons);
        assert_eq!(
            v.reasons,
            [
                "face already enrolled under subject customer-7 (face face_1, job job_9) at similarity 0.97 ≥ 0.75",
                "rule duplicate_face → review"
            ]
        );
        o.dedup.as_mut().unwrap().matches.clear();
        assert_eq!(
            score(&WorkflowConfig::default(), &o).decision,
            Decision::Accepted
        );
    }
}
