//! SQL for the probabilistic pass and clerical review: the model and self-report each run
//! records, the review items and their decisions, and merges undone by a person.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

use super::{AuditEntry, Store, StoreError, StoreTx};
use crate::identity::registry::PersonId;
use crate::identity::token::Token;
use crate::link::prob::compare::COMP_FIELDS;
use crate::link::prob::{Band, PassReport};

const CHUNK: usize = 2_000;

/// A decided review item, as later runs honour it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDecisionRow {
    pub source: String,
    pub record_key: Token,
    pub person_id: PersonId,
    pub accepted: bool,
}

/// A probabilistic decision a later run holds (`link_memory`; see
/// [`crate::link::prob::Held`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRow {
    pub source: String,
    pub record_key: Token,
    pub person_id: PersonId,
    pub band: Band,
}

/// A probable link a run sends to review (one per agency record key and person).
#[derive(Debug, Clone, PartialEq)]
pub struct NewLinkReview {
    pub source: String,
    pub record_key: Token,
    pub person_id: PersonId,
    pub weight: f64,
    pub probability: f64,
    /// `[{"field":…,"level":…,"weight":…}, …]`
    pub fields: serde_json::Value,
    pub rows: i64,
    pub record_ref: Option<String>,
    pub record_ssn_last4: Option<String>,
    pub person_ssn_last4: Option<String>,
}

/// One line of `xmatch review list`: a probable link (`L…`) or two persons whose
/// identifiers disagree (`R…`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReviewItem {
    /// `L<n>` or `R<n>`.
    pub id: String,
    pub kind: String,
    pub status: String,
    pub source: Option<String>,
    /// The agency record's person candidate, or the first of the two persons.
    pub person_key: String,
    /// The second person of an `R` item.
    pub other_person_key: Option<String>,
    pub weight: Option<f64>,
    pub probability: Option<f64>,
    pub fields: serde_json::Value,
    pub rows: Option<i64>,
    pub record_ref: Option<String>,
    /// Masked: `***-**-1234`.
    pub record_ssn: Option<String>,
    pub person_ssn: Option<String>,
    pub first_run: i64,
    pub last_run: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// Which items `review list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewFilter {
    Pending,
    Decided,
    All,
}

/// What a review decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionOutcome {
    Decided,
    /// The item was decided before (status given); nothing changed.
    AlreadyDecided(String),
    NotFound,
}

/// A review item id: `L12` (probable link) or `R3` (identifier conflict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewId {
    Link(i64),
    Resolution(i64),
}

impl ReviewId {
    pub fn parse(s: &str) -> Option<ReviewId> {
        let s = s.trim();
        let (kind, n) = s.split_at_checked(1)?;
        let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
        match kind {
            "L" | "l" => Some(ReviewId::Link(n)),
            "R" | "r" => Some(ReviewId::Resolution(n)),
            _ => None,
        }
    }
}

impl std::fmt::Display for ReviewId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReviewId::Link(n) => write!(f, "L{n}"),
            ReviewId::Resolution(n) => write!(f, "R{n}"),
        }
    }
}

fn token_from(bytes: Vec<u8>) -> Result<Token, sqlx::Error> {
    bytes
        .try_into()
        .map_err(|_| sqlx::Error::Decode("a stored record key is not 32 bytes".into()))
}

fn masked(last4: Option<String>) -> Option<String> {
    last4.map(|l| format!("***-**-{l}"))
}

/// One run's probabilistic-pass report for one source, as `record_linkage` stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkQualityRow {
    pub run_id: i64,
    pub pipeline: String,
    pub source: String,
    pub records: i64,
    pub records_with_candidates: i64,
    pub candidate_pairs: i64,
    pub linked: i64,
    pub review: i64,
    pub non_link: i64,
    pub ambiguous: i64,
    /// Records whose band a held decision gave.
    pub held: i64,
    pub review_accepted: i64,
    pub estimated_precision: f64,
    pub estimated_recall: f64,
    pub lambda: f64,
    pub em_iterations: i64,
    pub em_converged: bool,
}

/// The columns of [`LinkQualityRow`]; a macro so each query stays one static string.
macro_rules! link_quality_select {
    () => {
        "SELECT q.run_id, r.pipeline, q.source, q.records, q.records_with_candidates, \
         q.candidate_pairs, q.linked, q.review, q.non_link, q.ambiguous, q.held, \
         q.review_accepted, \
         q.estimated_precision, q.estimated_recall, q.lambda, q.em_iterations, \
         q.em_converged FROM link_quality q JOIN runs r ON r.id = q.run_id "
    };
}

impl Store {
    /// The probabilistic pass's reports of one run, by source.
    pub async fn link_quality(&self, run_id: i64) -> Result<Vec<LinkQualityRow>, StoreError> {
        const SQL: &str = concat!(
            link_quality_select!(),
            "WHERE q.run_id = $1 ORDER BY q.source"
        );
        self.link_quality_where(SQL, Some(run_id)).await
    }

    /// The reports of each pipeline's latest succeeded run that has any, for `/metrics`.
    pub async fn latest_link_quality(&self) -> Result<Vec<LinkQualityRow>, StoreError> {
        const SQL: &str = concat!(
            link_quality_select!(),
            "WHERE q.run_id IN (SELECT MAX(r2.id) FROM runs r2 \
             JOIN link_quality q2 ON q2.run_id = r2.id WHERE r2.status = 'succeeded' \
             GROUP BY r2.pipeline) ORDER BY r.pipeline, q.source"
        );
        self.link_quality_where(SQL, None).await
    }

    async fn link_quality_where(
        &self,
        sql: &'static str,
        run_id: Option<i64>,
    ) -> Result<Vec<LinkQualityRow>, StoreError> {
        on_pool!(self, pool => {
            let mut q = sqlx::query(sql);
            if let Some(id) = run_id {
                q = q.bind(id);
            }
            Ok(q.fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| {
                    Ok(LinkQualityRow {
                        run_id: r.try_get("run_id")?,
                        pipeline: r.try_get("pipeline")?,
                        source: r.try_get("source")?,
                        records: r.try_get("records")?,
                        records_with_candidates: r.try_get("records_with_candidates")?,
                        candidate_pairs: r.try_get("candidate_pairs")?,
                        linked: r.try_get("linked")?,
                        review: r.try_get("review")?,
                        non_link: r.try_get("non_link")?,
                        ambiguous: r.try_get("ambiguous")?,
                        held: r.try_get("held")?,
                        review_accepted: r.try_get("review_accepted")?,
                        estimated_precision: r.try_get("estimated_precision")?,
                        estimated_recall: r.try_get("estimated_recall")?,
                        lambda: r.try_get("lambda")?,
                        em_iterations: r.try_get("em_iterations")?,
                        em_converged: r.try_get("em_converged")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?)
        })
    }

    /// Every decided probable link (accepted or rejected), for a run to honour.
    pub async fn link_decisions(&self) -> Result<Vec<LinkDecisionRow>, StoreError> {
        const SQL: &str = "SELECT source, record_key, person_id, status FROM link_reviews \
                           WHERE status IN ('accepted', 'rejected')";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| {
                    Ok(LinkDecisionRow {
                        source: r.try_get("source")?,
                        record_key: token_from(r.try_get("record_key")?)?,
                        person_id: r.try_get("person_id")?,
                        accepted: r.try_get::<String, _>("status")? == "accepted",
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?)
        })
    }

    /// Every held probabilistic decision, for a run to honour.
    pub async fn link_memory(&self) -> Result<Vec<HeldRow>, StoreError> {
        const SQL: &str = "SELECT source, record_key, person_id, band FROM link_memory";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| {
                    let band: String = r.try_get("band")?;
                    Ok(HeldRow {
                        source: r.try_get("source")?,
                        record_key: token_from(r.try_get("record_key")?)?,
                        person_id: r.try_get("person_id")?,
                        band: Band::parse(&band).ok_or_else(|| {
                            sqlx::Error::Decode(format!("unknown band {band:?} in link_memory").into())
                        })?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?)
        })
    }

    /// Person pairs an unmerge said are two people.
    pub async fn merge_blocks(&self) -> Result<Vec<(PersonId, PersonId)>, StoreError> {
        on_pool!(self, pool => {
            Ok(sqlx::query("SELECT person_a, person_b FROM merge_blocks")
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| Ok((r.try_get("person_a")?, r.try_get("person_b")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?)
        })
    }

    /// Review items, oldest first.
    pub async fn review_items(
        &self,
        filter: ReviewFilter,
        limit: i64,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let (link_where, res_where) = match filter {
            ReviewFilter::Pending => ("WHERE r.status = 'pending'", "WHERE r.status = 'open'"),
            ReviewFilter::Decided => ("WHERE r.status <> 'pending'", "WHERE r.status <> 'open'"),
            ReviewFilter::All => ("", ""),
        };
        let link_sql = format!(
            "SELECT r.id, r.source, p.person_key, r.weight, r.probability, r.field_weights, r.rows, \
             r.record_ref, r.record_ssn_last4, r.person_ssn_last4, r.first_run, r.last_run, \
             r.status, r.decided_by, r.decided_at, r.reason \
             FROM link_reviews r JOIN persons p ON p.id = r.person_id {link_where} \
             ORDER BY r.id LIMIT $1"
        );
        let res_sql = format!(
            "SELECT r.id, r.kind, a.person_key AS a, b.person_key AS b, r.run_id, r.status, \
             r.decided_by, r.decided_at, r.reason \
             FROM review_queue r JOIN persons a ON a.id = r.person_a \
             JOIN persons b ON b.id = r.person_b {res_where} ORDER BY r.id LIMIT $1"
        );
        let mut out = Vec::new();
        on_pool!(self, pool => {
            for r in sqlx::query(sqlx::AssertSqlSafe(link_sql.clone())).bind(limit).fetch_all(pool).await? {
                let fields: String = r.try_get("field_weights")?;
                out.push(ReviewItem {
                    id: ReviewId::Link(r.try_get("id")?).to_string(),
                    kind: "probable_link".into(),
                    status: r.try_get("status")?,
                    source: Some(r.try_get("source")?),
                    person_key: r.try_get("person_key")?,
                    other_person_key: None,
                    weight: Some(r.try_get("weight")?),
                    probability: Some(r.try_get("probability")?),
                    fields: serde_json::from_str(&fields).unwrap_or(serde_json::Value::Null),
                    rows: Some(r.try_get("rows")?),
                    record_ref: r.try_get("record_ref")?,
                    record_ssn: masked(r.try_get("record_ssn_last4")?),
                    person_ssn: masked(r.try_get("person_ssn_last4")?),
                    first_run: r.try_get("first_run")?,
                    last_run: r.try_get("last_run")?,
                    decided_by: r.try_get("decided_by")?,
                    decided_at: r.try_get("decided_at")?,
                    reason: r.try_get("reason")?,
                });
            }
            for r in sqlx::query(sqlx::AssertSqlSafe(res_sql.clone())).bind(limit).fetch_all(pool).await? {
                let status: String = r.try_get("status")?;
                let run: i64 = r.try_get("run_id")?;
                out.push(ReviewItem {
                    id: ReviewId::Resolution(r.try_get("id")?).to_string(),
                    kind: r.try_get("kind")?,
                    status: if status == "open" { "pending".into() } else { status },
                    source: None,
                    person_key: r.try_get("a")?,
                    other_person_key: Some(r.try_get("b")?),
                    weight: None,
                    probability: None,
                    fields: serde_json::Value::Null,
                    rows: None,
                    record_ref: None,
                    record_ssn: None,
                    person_ssn: None,
                    first_run: run,
                    last_run: run,
                    decided_by: r.try_get("decided_by")?,
                    decided_at: r.try_get("decided_at")?,
                    reason: r.try_get("reason")?,
                });
            }
        });
        Ok(out)
    }

    /// Accepts or rejects one review item, with an audit row, in one transaction. Accepting
    /// an `R` item merges its second person into its first (by pointer, as every merge).
    pub async fn decide_review(
        &self,
        id: ReviewId,
        accept: bool,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<DecisionOutcome, StoreError> {
        let now = Utc::now();
        let status = if accept { "accepted" } else { "rejected" };
        let mut tx = self.begin().await?;
        let outcome = on_tx!(&mut tx, conn => {
            match id {
                ReviewId::Link(n) => {
                    let current: Option<String> =
                        sqlx::query_scalar("SELECT status FROM link_reviews WHERE id = $1")
                            .bind(n)
                            .fetch_optional(&mut *conn)
                            .await?;
                    match current.as_deref() {
                        None => DecisionOutcome::NotFound,
                        Some("pending") => {
                            sqlx::query(
                                "UPDATE link_reviews SET status = $1, decided_by = $2, \
                                 decided_at = $3, reason = $4 WHERE id = $5",
                            )
                            .bind(status)
                            .bind(actor)
                            .bind(now)
                            .bind(reason)
                            .bind(n)
                            .execute(&mut *conn)
                            .await?;
                            DecisionOutcome::Decided
                        }
                        Some(other) => DecisionOutcome::AlreadyDecided(other.to_string()),
                    }
                }
                ReviewId::Resolution(n) => {
                    let row = sqlx::query("SELECT status, person_a, person_b FROM review_queue WHERE id = $1")
                        .bind(n)
                        .fetch_optional(&mut *conn)
                        .await?;
                    match row {
                        None => DecisionOutcome::NotFound,
                        Some(r) if r.try_get::<String, _>("status")? != "open" => {
                            DecisionOutcome::AlreadyDecided(r.try_get("status")?)
                        }
                        Some(r) => {
                            let (a, b): (PersonId, PersonId) = (r.try_get("person_a")?, r.try_get("person_b")?);
                            sqlx::query(
                                "UPDATE review_queue SET status = $1, decided_by = $2, \
                                 decided_at = $3, reason = $4 WHERE id = $5",
                            )
                            .bind(status)
                            .bind(actor)
                            .bind(now)
                            .bind(reason)
                            .bind(n)
                            .execute(&mut *conn)
                            .await?;
                            if accept {
                                // Merge the survivors, so a chain of earlier merges is respected.
                                let mut ids = [a, b];
                                for id in ids.iter_mut() {
                                    for _ in 0..1000 {
                                        let next: Option<Option<i64>> = sqlx::query_scalar(
                                            "SELECT merged_into FROM persons WHERE id = $1",
                                        )
                                        .bind(*id)
                                        .fetch_optional(&mut *conn)
                                        .await?;
                                        match next.flatten() {
                                            Some(n) => *id = n,
                                            None => break,
                                        }
                                    }
                                }
                                let [a, b] = ids;
                                if a != b {
                                    sqlx::query("UPDATE persons SET merged_into = $1 WHERE id = $2")
                                        .bind(a)
                                        .bind(b)
                                        .execute(&mut *conn)
                                        .await?;
                                    sqlx::query(
                                        "INSERT INTO merges (from_person, into_person, run_id, reason, at) \
                                         VALUES ($1, $2, 0, 'review_accepted', $3)",
                                    )
                                    .bind(b)
                                    .bind(a)
                                    .bind(now)
                                    .execute(&mut *conn)
                                    .await?;
                                }
                            }
                            DecisionOutcome::Decided
                        }
                    }
                }
            }
        });
        if outcome == DecisionOutcome::Decided {
            tx.record_audit(&AuditEntry {
                actor: actor.to_string(),
                action: format!("review.{}", if accept { "accept" } else { "reject" }),
                reason: reason.map(str::to_string),
                detail: serde_json::json!({ "item": id.to_string() }),
            })
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Undoes the merge of the person whose own key is `person_key`: it survives again,
    /// the merge rows stay (marked undone), the pair is never merged again, and an audit
    /// row says who and why. `Ok(None)` when the key names no merged person.
    pub async fn unmerge(
        &self,
        person_key: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Option<(PersonId, PersonId)>, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin().await?;
        let pair = on_tx!(&mut tx, conn => {
            let row = sqlx::query("SELECT id, merged_into FROM persons WHERE person_key = $1")
                .bind(person_key)
                .fetch_optional(&mut *conn)
                .await?;
            match row {
                None => None,
                Some(r) => {
                    let id: PersonId = r.try_get("id")?;
                    match r.try_get::<Option<PersonId>, _>("merged_into")? {
                        None => None,
                        Some(into) => {
                            // Identifiers the survivor took on from the merge onwards that
                            // the unmerged person holds too (its record id, its name+DOB
                            // tokens) came from the unmerged person's rows: they go back
                            // with it, or its rows would still resolve to the survivor.
                            sqlx::query(
                                "DELETE FROM person_tokens WHERE person_id = $1 \
                                 AND first_run >= (SELECT MAX(run_id) FROM merges \
                                     WHERE from_person = $2 AND undone_at IS NULL) \
                                 AND EXISTS (SELECT 1 FROM person_tokens t \
                                     WHERE t.person_id = $2 AND t.rule = person_tokens.rule \
                                     AND t.token = person_tokens.token)",
                            )
                            .bind(into)
                            .bind(id)
                            .execute(&mut *conn)
                            .await?;
                            sqlx::query("UPDATE persons SET merged_into = NULL WHERE id = $1")
                                .bind(id)
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query(
                                "UPDATE merges SET undone_at = $1, undone_by = $2, undo_reason = $3 \
                                 WHERE from_person = $4 AND undone_at IS NULL",
                            )
                            .bind(now)
                            .bind(actor)
                            .bind(reason)
                            .bind(id)
                            .execute(&mut *conn)
                            .await?;
                            sqlx::query(
                                "INSERT INTO merge_blocks (person_a, person_b, at, actor) \
                                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                            )
                            .bind(id.min(into))
                            .bind(id.max(into))
                            .bind(now)
                            .bind(actor)
                            .execute(&mut *conn)
                            .await?;
                            Some((id, into))
                        }
                    }
                }
            }
        });
        if let Some((from, into)) = pair {
            tx.record_audit(&AuditEntry {
                actor: actor.to_string(),
                action: "review.unmerge".into(),
                reason: Some(reason.to_string()),
                detail: serde_json::json!({ "from_person": from, "into_person": into }),
            })
            .await?;
        }
        tx.commit().await?;
        Ok(pair)
    }
}

impl StoreTx {
    /// An audit row inside the transaction that made the change.
    pub async fn record_audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        let detail = entry.detail.to_string();
        on_tx!(self, conn => {
            sqlx::query("INSERT INTO audit_log (at, actor, action, reason, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(Utc::now())
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(entry.reason.as_deref())
                .bind(&detail)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Records each source's model and self-report for the run.
    pub async fn record_linkage(
        &mut self,
        run_id: i64,
        reports: &[(String, PassReport, u64)],
    ) -> Result<(), StoreError> {
        on_tx!(self, conn => {
            for (source, r, accepted) in reports {
                let (lambda, iterations, converged) = r
                    .model
                    .as_ref()
                    .map_or((0.0, 0, true), |m| (m.lambda, m.iterations as i64, m.converged));
                let mut q = QueryBuilder::new(
                    "INSERT INTO link_quality (run_id, source, records, records_with_candidates, \
                     candidate_pairs, linked, review, non_link, ambiguous, held, review_accepted, \
                     estimated_precision, estimated_recall, lambda, em_iterations, em_converged) ",
                );
                q.push_values([()], |mut b, _| {
                    b.push_bind(run_id)
                        .push_bind(source)
                        .push_bind(r.records as i64)
                        .push_bind(r.records_with_candidates as i64)
                        .push_bind(r.candidate_pairs as i64)
                        .push_bind(r.linked as i64)
                        .push_bind(r.review as i64)
                        .push_bind(r.non_link as i64)
                        .push_bind(r.ambiguous as i64)
                        .push_bind(r.held as i64)
                        .push_bind(*accepted as i64)
                        .push_bind(r.estimated_precision)
                        .push_bind(r.estimated_recall)
                        .push_bind(lambda)
                        .push_bind(iterations)
                        .push_bind(converged);
                });
                q.build().execute(&mut *conn).await?;
                if let Some(model) = &r.model {
                    let mut rows = Vec::new();
                    for f in COMP_FIELDS {
                        for (l, level) in f.levels().iter().enumerate().skip(1) {
                            rows.push((f.name(), *level, model.m[f.index()][l], model.u[f.index()][l]));
                        }
                    }
                    let mut q = QueryBuilder::new("INSERT INTO link_models (run_id, source, field, level, m, u) ");
                    q.push_values(rows, |mut b, (field, level, m, u)| {
                        b.push_bind(run_id).push_bind(source).push_bind(field).push_bind(level).push_bind(m).push_bind(u);
                    });
                    q.build().execute(&mut *conn).await?;
                }
            }
        });
        Ok(())
    }

    /// Adds this run's probable links to the review queue; an item already pending is
    /// refreshed (score, rows, last run), a decided one is left as it was.
    pub async fn upsert_link_reviews(
        &mut self,
        run_id: i64,
        items: &[NewLinkReview],
    ) -> Result<(), StoreError> {
        on_tx!(self, conn => {
            for chunk in items.chunks(CHUNK) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO link_reviews (source, record_key, person_id, first_run, last_run, \
                     weight, probability, field_weights, rows, record_ref, record_ssn_last4, \
                     person_ssn_last4, status) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.source)
                        .push_bind(r.record_key.to_vec())
                        .push_bind(r.person_id)
                        .push_bind(run_id)
                        .push_bind(run_id)
                        .push_bind(r.weight)
                        .push_bind(r.probability)
                        .push_bind(r.fields.to_string())
                        .push_bind(r.rows)
                        .push_bind(r.record_ref.as_deref())
                        .push_bind(r.record_ssn_last4.as_deref())
                        .push_bind(r.person_ssn_last4.as_deref())
                        .push_bind("pending");
                });
                q.push(
                    " ON CONFLICT (source, record_key, person_id) DO UPDATE SET \
                     last_run = excluded.last_run, weight = excluded.weight, \
                     probability = excluded.probability, field_weights = excluded.field_weights, \
                     rows = excluded.rows, record_ref = excluded.record_ref, \
                     record_ssn_last4 = excluded.record_ssn_last4, \
                     person_ssn_last4 = excluded.person_ssn_last4 \
                     WHERE link_reviews.status = 'pending'",
                );
                q.build().execute(&mut *conn).await?;
            }
        });
        Ok(())
    }

    /// This run's changes to the held decisions: `save` replaces a record's decision,
    /// `forget` drops it (the record is now far from every band it could hold).
    pub async fn save_link_memory(
        &mut self,
        run_id: i64,
        save: &[HeldRow],
        forget: &[(String, Token)],
    ) -> Result<(), StoreError> {
        const FORGET: &str = "DELETE FROM link_memory WHERE source = $1 AND record_key = $2";
        on_tx!(self, conn => {
            for chunk in save.chunks(CHUNK) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO link_memory (source, record_key, person_id, band, run_id) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.source)
                        .push_bind(r.record_key.to_vec())
                        .push_bind(r.person_id)
                        .push_bind(r.band.as_str())
                        .push_bind(run_id);
                });
                q.push(
                    " ON CONFLICT (source, record_key) DO UPDATE SET \
                     person_id = excluded.person_id, band = excluded.band, run_id = excluded.run_id",
                );
                q.build().execute(&mut *conn).await?;
            }
            for (source, key) in forget {
                sqlx::query(FORGET)
                    .bind(source)
                    .bind(&key[..])
                    .execute(&mut *conn)
                    .await?;
            }
        });
        Ok(())
    }
}
