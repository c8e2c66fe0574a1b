//! Per-tenant workflow configuration: which steps run and in what order, thresholds, weights,
//! decision bands, mandatory fields and rules. Read from JSON with every unknown field refused,
//! then [`WorkflowConfig::validate`]d so that a bad value is a 422 naming its field.

use serde::{Deserialize, Serialize};

/// A step of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Liveness and anti-spoof on the selfie (and frames).
    Liveness,
    /// Reading the document.
    Ocr,
    /// ICAO 9303 checks on what was read.
    Validate,
    /// Selfie against the document portrait.
    FaceMatch,
    /// Know-your-applicant checks on the declared data.
    Kya,
    /// The selfie searched against the tenant's enrolled faces (1:N): a face already enrolled
    /// under another subject fires `duplicate_face`.
    Dedup,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 6] = [
        Step::Liveness,
        Step::Ocr,
        Step::Validate,
        Step::FaceMatch,
        Step::Kya,
        Step::Dedup,
    ];

    /// The steps of the default workflow, in order (`dedup` is opt-in: it needs enrolled faces).
    pub const DEFAULT: [Step; 5] = [
        Step::Liveness,
        Step::Ocr,
        Step::Validate,
        Step::FaceMatch,
        Step::Kya,
    ];

    /// The step's name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Step::Liveness => "liveness",
            Step::Ocr => "ocr",
            Step::Validate => "validate",
            Step::FaceMatch => "face_match",
            Step::Kya => "kya",
            Step::Dedup => "dedup",
        }
    }
}

/// Thresholds a step's result is held to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Face similarity (0–1) at or above which selfie and portrait match.
    pub face_match: f32,
    /// Liveness confidence (0–1) below which a live verdict is not trusted.
    pub liveness: f32,
    /// Document confidence (0–1) below which the document counts as unreadable.
    pub ocr_confidence: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            face_match: 0.75,
            liveness: 0.5,
            ocr_confidence: 0.5,
        }
    }
}

/// How much each factor weighs in the score (relative; only factors that ran count).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Liveness.
    pub liveness: u32,
    /// Face match.
    pub face_match: u32,
    /// Document (OCR + validation).
    pub document: u32,
    /// Know your applicant.
    pub kya: u32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            liveness: 30,
            face_match: 40,
            document: 25,
            kya: 5,
        }
    }
}

/// Score bands: accepted at or above `accepted`, review at or above `review`, rejected below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bands {
    /// Lowest accepted score.
    pub accepted: u32,
    /// Lowest score sent to review.
    pub review: u32,
}

impl Default for Bands {
    fn default() -> Self {
        Bands {
            accepted: 80,
            review: 60,
        }
    }
}

/// A workflow outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Verified.
    Accepted,
    /// A person must look.
    Review,
    /// Refused.
    Rejected,
}

impl Decision {
    /// The decision's name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Review => "review",
            Decision::Rejected => "rejected",
        }
    }
}

/// What a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The document's expiry date has passed.
    DocumentExpired,
    /// The holder is younger than `value` years.
    AgeBelow,
    /// Liveness reported a spoof (`spoof_type` other than `none`).
    SpoofDetected,
    /// An MRZ check digit failed.
    MrzChecksumFailed,
    /// Selfie and portrait did not match.
    FaceMismatch,
    /// A mandatory field was not read.
    MandatoryFieldMissing,
    /// A KYA check failed (not merely skipped).
    KyaFailed,
    /// The `dedup` step found the selfie's face enrolled under another subject.
    DuplicateFace,
}

impl Condition {
    /// Every condition.
    pub const ALL: [Condition; 8] = [
        Condition::SpoofDetected,
        Condition::FaceMismatch,
        Condition::DocumentExpired,
        Condition::AgeBelow,
        Condition::MrzChecksumFailed,
        Condition::MandatoryFieldMissing,
        Condition::KyaFailed,
        Condition::DuplicateFace,
    ];

    /// The condition's name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Condition::DocumentExpired => "document_expired",
            Condition::AgeBelow => "age_below",
            Condition::SpoofDetected => "spoof_detected",
            Condition::MrzChecksumFailed => "mrz_checksum_failed",
            Condition::FaceMismatch => "face_mismatch",
            Condition::MandatoryFieldMissing => "mandatory_field_missing",
            Condition::KyaFailed => "kya_failed",
            Condition::DuplicateFace => "duplicate_face",
        }
    }
}

/// `when` holds → at least `decision` (rules only make a decision stricter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The condition.
    pub when: Condition,
    /// The condition's parameter (years for `age_below`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u32>,
    /// The decision it forces.
    pub decision: Decision,
}

/// Document fields a workflow may require.
pub const KNOWN_FIELDS: &[&str] = &[
    "surname",
    "given_names",
    "document_number",
    "nationality",
    "issuing_country",
    "date_of_birth",
    "sex",
    "date_of_expiry",
    "date_of_issue",
    "place_of_birth",
    "personal_number",
    "authority",
];

/// The `dedup` step and enrolment after a verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dedup {
    /// Similarity (0–1, the face-match scale) at or above which an enrolled face is the same
    /// person. Default 0.75, the face-match default.
    pub threshold: f32,
    /// The collection searched and enrolled into (`default` when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Enrol the selfie of every accepted verification, so the next applicant with the same
    /// face is caught. Default false.
    pub enrol_accepted: bool,
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup {
            threshold: Thresholds::default().face_match,
            collection: None,
            enrol_accepted: false,
        }
    }
}

/// A tenant's workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowConfig {
    /// Steps that run, in order (independent steps still run in parallel).
    pub steps: Vec<Step>,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Factor weights.
    pub weights: Weights,
    /// Decision bands.
    pub bands: Bands,
    /// Document fields that must be read.
    pub mandatory_fields: Vec<String>,
    /// Rules applied after scoring.
    pub rules: Vec<Rule>,
    /// Face deduplication.
    pub dedup: Dedup,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            steps: Step::DEFAULT.to_vec(),
            dedup: Dedup::default(),
            thresholds: Thresholds::default(),
            weights: Weights::default(),
            bands: Bands::default(),
            mandatory_fields: vec![
                "surname".into(),
                "date_of_birth".into(),
                "document_number".into(),
            ],
            rules: vec![
                Rule {
                    when: Condition::SpoofDetected,
                    value: None,
                    decision: Decision::Rejected,
                },
                Rule {
                    when: Condition::FaceMismatch,
                    value: None,
                    decision: Decision::Rejected,
                },
                Rule {
                    when: Condition::DocumentExpired,
                    value: None,
                    decision: Decision::Rejected,
                },
                Rule {
                    when: Condition::AgeBelow,
                    value: Some(18),
                    decision: Decision::Rejected,
                },
                Rule {
                    when: Condition::MrzChecksumFailed,
                    value: None,
                    decision: Decision::Review,
                },
                Rule {
                    when: Condition::MandatoryFieldMissing,
                    value: None,
                    decision: Decision::Review,
                },
                Rule {
                    when: Condition::DuplicateFace,
                    value: None,
                    decision: Decision::Review,
                },
            ],
        }
    }
}

/// A configuration value that is not acceptable: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field (`weights.liveness`, `rules[1].value`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Most rules a workflow may hold (each is copied into every verification's reasoning).
pub const MAX_RULES: usize = 32;

/// What the operator holds every workflow of a tenant to: a tenant may be stricter, never
/// laxer. The face-match floor is the tenant's face-match threshold (the one `/v1/face/match`
/// enforces); the rest is set per tenant by the operator (defaults below).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Floors {
    /// Lowest `thresholds.face_match`.
    pub face_match: f32,
    /// Lowest `thresholds.liveness`.
    pub liveness: f32,
    /// Lowest decision bands.
    pub bands: Bands,
    /// Rules every workflow holds, at least as strict.
    pub rules: Vec<Rule>,
}

impl Default for Floors {
    fn default() -> Self {
        Floors {
            face_match: Thresholds::default().face_match,
            liveness: Thresholds::default().liveness,
            bands: Bands {
                accepted: 70,
                review: 50,
            },
            // Weights cannot outvote these: a spoof or a face that does not match is rejected
            // however little its factor weighs (the first two of the default workflow's rules).
            rules: WorkflowConfig::default().rules[..2].to_vec(),
        }
    }
}

impl Floors {
    /// Checks the operator's own values (0–1, bands in order, rules that can be held).
    pub fn validate(&self) -> Result<(), FieldError> {
        if !(0.5..=0.99).contains(&self.face_match) {
            // Below 0.5 the decision is looser than the model's own operating point.
            return Err(FieldError::new(
                "face_match",
                "must be between 0.5 and 0.99",
            ));
        }
        if !(0.0..=1.0).contains(&self.liveness) {
            return Err(FieldError::new("liveness", "must be within 0–1"));
        }
        if self.bands.accepted > 100 {
            return Err(FieldError::new("bands.accepted", "must be 0–100"));
        }
        if self.bands.review > self.bands.accepted {
            return Err(FieldError::new(
                "bands.review",
                "must not be above bands.accepted",
            ));
        }
        if self.rules.len() > MAX_RULES {
            return Err(FieldError::new(
                "rules",
                format!("at most {MAX_RULES} rules"),
            ));
        }
        let probe = WorkflowConfig {
            rules: self.rules.clone(),
            ..WorkflowConfig::default()
        };
        probe.validate()
    }

    /// The required rule a workflow's rules do not meet, if any.
    fn unmet_rule<'a>(&'a self, rules: &[Rule]) -> Option<(usize, &'a Rule)> {
        // As strict or stricter: the same condition forcing the same decision or a harsher one
        // (an `age_below` rule with a higher age covers a lower one).
        self.rules.iter().enumerate().find(|(_, need)| {
            !rules.iter().any(|r| {
                let value_ok = match (r.when, r.value, need.value) {
                    (Condition::AgeBelow, Some(have), Some(want)) => have >= want,
                    _ => r.value == need.value,
                };
                r.when == need.when && value_ok && r.decision >= need.decision
            })
        })
    }
}

impl WorkflowConfig {
    /// Refuses (naming the field) a value laxer than the operator's floor.
    pub fn check_floors(&self, floors: &Floors) -> Result<(), FieldError> {
        let below = |field: &str, v: String, floor: String| {
            FieldError::new(
                field,
                format!("{v} is below the operator's floor of {floor} for this tenant"),
            )
        };
        if self.thresholds.face_match < floors.face_match {
            return Err(below(
                "thresholds.face_match",
                self.thresholds.face_match.to_string(),
                floors.face_match.to_string(),
            ));
        }
        if self.thresholds.liveness < floors.liveness {
            return Err(below(
                "thresholds.liveness",
                self.thresholds.liveness.to_string(),
                floors.liveness.to_string(),
            ));
        }
        if self.bands.accepted < floors.bands.accepted {
            return Err(below(
                "bands.accepted",
                self.bands.accepted.to_string(),
                floors.bands.accepted.to_string(),
            ));
        }
        if self.bands.review < floors.bands.review {
            return Err(below(
                "bands.review",
                self.bands.review.to_string(),
                floors.bands.review.to_string(),
            ));
        }
        if let Some((_, need)) = floors.unmet_rule(&self.rules) {
            return Err(FieldError::new(
                "rules",
                format!(
                    "the operator requires the rule {} → {} (or stricter) for this tenant",
                    serde_json::to_value(need.when).unwrap_or_default(),
                    need.decision.name()
                ),
            ));
        }
        Ok(())
    }

    /// This workflow held to `floors`: what runs, whatever was stored before the operator
    /// raised a floor.
    pub fn bound_by(mut self, floors: &Floors) -> WorkflowConfig {
        let t = &mut self.thresholds;
        t.face_match = t.face_match.max(floors.face_match);
        t.liveness = t.liveness.max(floors.liveness);
        let b = &mut self.bands;
        b.accepted = b.accepted.max(floors.bands.accepted);
        b.review = b.review.max(floors.bands.review).min(b.accepted);
        while let Some((_, need)) = floors.unmet_rule(&self.rules) {
            self.rules.push(need.clone());
        }
        self
    }
}

/// Parses a tenant's change as a JSON merge patch over `base` (the defaults held to the
/// operator's floors), so a field left out takes the base's value; then validates it and
/// checks it against `floors`. Errors name the field.
pub fn from_json_over(
    body: &[u8],
    base: &WorkflowConfig,
    floors: &Floors,
) -> Result<WorkflowConfig, FieldError> {
    let patch: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| FieldError::new("", format!("not JSON: {e}")))?;
    if !patch.is_object() {
        return Err(FieldError::new("", "the workflow is a JSON object"));
    }
    let mut merged = serde_json::to_value(base).unwrap_or_default();
    crate::tenancy::plans::merge_patch(&mut merged, &patch);
    let config: WorkflowConfig = serde_path_to_error::deserialize(merged).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        FieldError::new(field, e.inner().to_string())
    })?;
    config.validate()?;
    config.check_floors(floors)?;
    Ok(config)
}

/// Parses a configuration from JSON: a type error or unknown field names its path.
pub fn from_json(body: &[u8]) -> Result<WorkflowConfig, FieldError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let config: WorkflowConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        FieldError::new(field, e.inner().to_string())
    })?;
    config.validate()?;
    Ok(config)
}

impl WorkflowConfig {
    /// Checks values serde cannot: ranges, orderings, step dependencies, rule parameters.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.steps.is_empty() {
            return Err(FieldError::new("steps", "at least one step must run"));
        }
        for (i, s) in self.steps.iter().enumerate() {
            if self.steps[..i].contains(s) {
                return Err(FieldError::new(
                    format!("steps[{i}]"),
                    format!("`{}` is listed twice", s.name()),
                ));
            }
        }
        let has = |s: Step| self.steps.contains(&s);
        let position = |s: Step| self.steps.iter().position(|&x| x == s);
        // The selfie's face comes from the liveness step.
        if has(Step::FaceMatch) && !has(Step::Liveness) {
            return Err(FieldError::new("steps", "`face_match` needs `liveness`"));
        }
        if has(Step::Dedup) && !has(Step::Liveness) {
            return Err(FieldError::new("steps", "`dedup` needs `liveness`"));
        }
        if self.dedup.enrol_accepted && !has(Step::Liveness) {
            return Err(FieldError::new(
                "dedup.enrol_accepted",
                "enrolling needs the selfie's face: add `liveness` to the steps",
            ));
        }
        if !(0.5..=1.0).contains(&self.dedup.threshold) {
            return Err(FieldError::new(
                "dedup.threshold",
                format!("{} is not within 0.5–1", self.dedup.threshold),
            ));
        }
        if let Some(c) = &self.dedup.collection {
            if c.is_empty()
                || c.len() > 64
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(FieldError::new(
                    "dedup.collection",
                    "1 to 64 characters of A–Z, a–z, 0–9, '-', '_', '.'",
                ));
            }
        }
        for dependent in [Step::Validate, Step::FaceMatch] {
            if has(dependent) && !has(Step::Ocr) {
                return Err(FieldError::new(
                    "steps",
                    format!("`{}` needs `ocr`", dependent.name()),
                ));
            }
            if has(dependent) && position(dependent) < position(Step::Ocr) {
                return Err(FieldError::new(
                    "steps",
                    format!("`{}` must come after `ocr`", dependent.name()),
                ));
            }
        }
        let t = &self.thresholds;
        for (name, v) in [
            ("thresholds.face_match", t.face_match),
            ("thresholds.liveness", t.liveness),
            ("thresholds.ocr_confidence", t.ocr_confidence),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(FieldError::new(name, format!("{v} is not within 0–1")));
            }
        }
        let w = &self.weights;
        for (name, v) in [
            ("weights.liveness", w.liveness),
            ("weights.face_match", w.face_match),
            ("weights.document", w.document),
            ("weights.kya", w.kya),
        ] {
            if v > 100 {
                return Err(FieldError::new(name, format!("{v} is above 100")));
            }
        }
        let counted: u32 = [
            (has(Step::Liveness), w.liveness),
            (has(Step::FaceMatch), w.face_match),
            (has(Step::Ocr), w.document),
            (has(Step::Kya), w.kya),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, w)| w)
        .sum();
        if counted == 0 {
            return Err(FieldError::new(
                "weights",
                "the steps that run must weigh more than 0 in all",
            ));
        }
        let b = &self.bands;
        if b.accepted > 100 {
            return Err(FieldError::new("bands.accepted", "must be 0–100"));
        }
        if b.review > b.accepted {
            return Err(FieldError::new(
                "bands.review",
                format!("{} is above bands.accepted ({})", b.review, b.accepted),
            ));
        }
        if self.rules.len() > MAX_RULES {
            return Err(FieldError::new(
                "rules",
                format!("at most {MAX_RULES} rules"),
            ));
        }
        for (i, f) in self.mandatory_fields.iter().enumerate() {
            if self.mandatory_fields[..i].contains(f) {
                return Err(FieldError::new(
                    format!("mandatory_fields[{i}]"),
                    format!("`{f}` is listed twice"),
                ));
            }
            if !KNOWN_FIELDS.contains(&f.as_str()) {
                return Err(FieldError::new(
                    format!("mandatory_fields[{i}]"),
                    format!("unknown field `{f}`; known: {}", KNOWN_FIELDS.join(", ")),
                ));
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            match (r.when, r.value) {
                (Condition::AgeBelow, None) => {
                    return Err(FieldError::new(
                        format!("rules[{i}].value"),
                        "`age_below` needs a value in years",
                    ))
                }
                (Condition::AgeBelow, Some(v)) if v > 150 => {
                    return Err(FieldError::new(
                        format!("rules[{i}].value"),
                        format!("{v} years is not a plausible age"),
                    ))
                }
                (Condition::AgeBelow, Some(_)) | (_, None) => {}
                (_, Some(_)) => {
                    return Err(FieldError::new(
                        format!("rules[{i}].value"),
                        "only `age_below` takes a value",
                    ))
                }
            }
            if r.decision == Decision::Accepted {
                return Err(FieldError::new(
                    format!("rules[{i}].decision"),
                    "a rule can force `review` or `rejected`, not `accepted`",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_json_names() {
        for c in Condition::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.name());
        }
        for s in Step::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
    }

    fn err(json: &str) -> FieldError {
        from_json(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let c = from_json(b"{}").unwrap();
        assert_eq!(c, WorkflowConfig::default());
        assert_eq!(c.weights.liveness + c.weights.face_match, 70);
        assert_eq!((c.bands.accepted, c.bands.review), (80, 60));
        // Round trip.
        let back = from_json(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            err(r#"{"weights":{"liveness":"x"}}"#).field,
            "weights.liveness"
        );
        assert_eq!(err(r#"{"weights":{"livenes":3}}"#).field, "weights.livenes");
        assert!(err(r#"{"weights":{"livenes":3}}"#)
            .message
            .contains("livenes"));
        assert_eq!(
            err(r#"{"thresholds":{"face_match":1.5}}"#).field,
            "thresholds.face_match"
        );
        assert_eq!(
            err(r#"{"bands":{"accepted":70,"review":75}}"#).field,
            "bands.review"
        );
        assert_eq!(err(r#"{"steps":["ocr","ocr"]}"#).field, "steps[1]");
        assert_eq!(err(r#"{"steps":["face_match"]}"#).field, "steps");
        assert_eq!(err(r#"{"steps":["face_match","ocr"]}"#).field, "steps");
        assert_eq!(err(r#"{"steps":["ocr","face_match"]}"#).field, "steps");
        assert_eq!(
            err(r#"{"steps":["liveness"],"weights":{"liveness":0}}"#).field,
            "weights"
        );
        assert_eq!(err(r#"{"steps":["selfie"]}"#).field, "steps[0]");
        assert_eq!(
            err(r#"{"mandatory_fields":["shoe_size"]}"#).field,
            "mandatory_fields[0]"
        );
        assert_eq!(
            err(r#"{"rules":[{"when":"age_below","decision":"rejected"}]}"#).field,
            "rules[0].value"
        );
        assert_eq!(
            err(r#"{"rules":[{"when":"document_expired","decision":"accepted"}]}"#).field,
            "rules[0].decision"
        );
        assert_eq!(
            err(r#"{"weights":{"liveness":0,"face_match":0,"document":0,"kya":0}}"#).field,
            "weights"
        );
        assert_eq!(err(r#"{"colour":"blue"}"#).field, "colour");
    }

    #[test]
    fn a_partial_config_keeps_the_other_defaults() {
        let c = from_json(br#"{"steps":["liveness"],"weights":{"kya":0}}"#).unwrap();
        assert_eq!(c.steps, vec![Step::Liveness]);
        assert_eq!(c.weights.kya, 0);
        assert_eq!(c.weights.face_match, 40);
        assert_eq!(c.bands, Bands::default());
    }
}
