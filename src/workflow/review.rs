//! Manual review: a person decides a verification the score sent to `review`.
//!
//! The decision, the review record, the audit entry and the `kyc.reviewed` webhook are written in
//! one transaction; the review's primary key (one per job) and the condition that the job is
//! still in `review` make a second decision — by another reviewer, or the same one twice — a
//! `Conflict` instead of a silent overwrite.

use serde_json::json;

use super::jobs::rfc3339;
use super::webhooks;
use crate::audit::NewEntry;
use crate::store::{self, Store, StoreError};

/// What a reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The person is who they claim: the job's decision becomes `accepted`.
    Approved,
    /// Refused: the job's decision becomes `rejected`.
    Rejected,
}

impl Outcome {
    /// `approved` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Rejected => "rejected",
        }
    }

    /// The job's final decision.
    pub fn decision(self) -> &'static str {
        match self {
            Outcome::Approved => "accepted",
            Outcome::Rejected => "rejected",
        }
    }
}

/// Comments longer than this are refused.
pub const MAX_COMMENT: usize = 2_000;

/// Who reviews.
pub struct Reviewer<'a> {
    /// The console user's id.
    pub user_id: &'a str,
    /// Their email (named in the audit log and the webhook).
    pub email: &'a str,
}

/// Records `outcome` on a job of `tenant_id` in review.
pub fn decide(
    store: &Store,
    tenant_id: &str,
    job_id: &str,
    reviewer: &Reviewer<'_>,
    outcome: Outcome,
    comment: &str,
) -> Result<(), StoreError> {
    let comment = comment.trim();
    if comment.chars().count() > MAX_COMMENT {
        return Err(StoreError::Invalid {
            field: "comment",
            reason: format!("at most {MAX_COMMENT} characters"),
        });
    }
    let now = store::now();
    store.write(|tx| {
        let job = store::jobs::get(tx, tenant_id, job_id)?.ok_or(StoreError::NotFound("job"))?;
        if !store::console::insert_review(
            tx,
            tenant_id,
            job_id,
            reviewer.user_id,
            reviewer.email,
            outcome.as_str(),
            comment,
            now,
        )? {
            return Err(StoreError::Conflict(format!(
                "job {job_id} was reviewed already"
            )));
        }
        if !store::console::decide(tx, tenant_id, job_id, outcome.decision())? {
            return Err(StoreError::Conflict(format!(
                "job {job_id} is not waiting for review"
            )));
        }
        store::audit::append(
            tx,
            &NewEntry::new(format!("user:{}", reviewer.email), "kyc.review")
                .tenant(tenant_id)
                .target(job_id)
                .details(json!({ "outcome": outcome.as_str(), "decision": outcome.decision() })),
            now,
        )?;
        // The event carries the reference like kyc.completed, so it is sealed under the subject's
        // key; a subject erased since gets none.
        if let Ok(key) = store.existing_subject_key(tx, tenant_id, &job.subject_id) {
            let data = json!({
                "job_id": job_id,
                "reference": job.reference,
                "decision": outcome.decision(),
                "review": {
                    "outcome": outcome.as_str(), "reviewer": reviewer.email,
                    "comment": comment, "at": rfc3339(now),
                },
            });
            let body = webhooks::event_body("kyc.reviewed", data);
            let callback = job
                .callback_url
                .as_deref()
                .map(|u| (u, job.key_id.as_deref()));
            webhooks::enqueue_event(
                &key,
                Some(&job.subject_id),
                tx,
                tenant_id,
                "kyc.reviewed",
                &body,
                callback,
            )?;
        }
        Ok(())
    })
}
