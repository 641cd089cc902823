//! The probabilistic pass inside a run: what the exact passes left unlinked in one source
//! goes through [`crate::link::prob`], with the review decisions of earlier runs applied
//! first (an accepted link links, a rejected pair is never compared again) and the pass's
//! own earlier decisions held (see [`crate::link::prob::Held`]), and comes back as links,
//! review items, changes to the held decisions and counts.

use std::collections::HashMap;

use crate::identity::blocking::BlockKeys;
use crate::identity::identify::{Distinct, Features};
use crate::identity::registry::{PersonId, Registry};
use crate::identity::ssn::Last4;
use crate::identity::token::{Token, TokenMap};
use crate::link::prob::{Band, Decision, Held, PassReport, PersonSide, ProbConfig, SourcePass};
use crate::link::{LinkOutcome, LinkStats, PROBABILISTIC};
use crate::store::{HeldRow, LinkDecisionRow, NewLinkReview};

/// A record the exact passes left unlinked, as the run offers it to the pass.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unlinked {
    /// Its row in the batch.
    pub row: usize,
    /// How the exact passes left it.
    pub exact: LinkOutcome,
    /// What review decisions are keyed on (record id token, or SSN token for wages).
    pub key: Option<Token>,
    pub last4: Option<Last4>,
}

/// Review decisions of earlier runs, and the pass's own decisions it holds, on surviving
/// persons: by source, then record key (looked up for every unlinked record, ten million
/// of a wage file's, so without building a key).
#[derive(Debug, Default)]
pub(super) struct Decisions {
    accepted: HashMap<String, TokenMap<PersonId>>,
    rejected: HashMap<String, TokenMap<Vec<PersonId>>>,
    held: HashMap<String, TokenMap<Held>>,
}

impl Decisions {
    pub fn new(rows: Vec<LinkDecisionRow>, held: Vec<HeldRow>, registry: &Registry) -> Decisions {
        let mut d = Decisions::default();
        for r in rows {
            let person = registry.survivor(r.person_id);
            if r.accepted {
                let m = d.accepted.entry(r.source).or_default();
                m.insert(r.record_key, person);
            } else {
                let m = d.rejected.entry(r.source).or_default();
                m.entry(r.record_key).or_default().push(person);
            }
        }
        for r in held {
            let person = registry.survivor(r.person_id);
            d.held.entry(r.source).or_default().insert(
                r.record_key,
                Held {
                    person,
                    band: r.band,
                },
            );
        }
        d
    }

    fn held_in(&self, source: &str) -> Option<&TokenMap<Held>> {
        self.held.get(source)
    }

    fn accepted_in(&self, source: &str) -> Option<&TokenMap<PersonId>> {
        self.accepted.get(source)
    }

    fn rejected_in(&self, source: &str) -> Option<&TokenMap<Vec<PersonId>>> {
        self.rejected.get(source)
    }
}

/// A record waiting for the model, with what the run needs once it is decided.
pub(super) struct Waiting<T> {
    /// How the exact passes left it (counted as such unless it links now).
    exact: LinkOutcome,
    /// Where it is, for a reviewer: `file:row`.
    record_ref: String,
    last4: Option<Last4>,
    pub data: T,
}

/// Exactly linked records per source whose pairs anchor EM: enough for `m` to a few
/// tenths of a percent, few enough to cost nothing next to the source.
const ANCHORS_PER_SOURCE: u64 = 20_000;

/// One source's probabilistic pass as the run drives it.
pub(super) struct SourceLinkage<'p, T> {
    source: String,
    pass: SourcePass<'p, Waiting<T>>,
    decisions: &'p Decisions,
    /// This source's accepted and rejected review decisions, looked up once: every
    /// unlinked record (ten million of a wage file's) asks.
    accepted_map: Option<&'p TokenMap<PersonId>>,
    rejected_map: Option<&'p TokenMap<Vec<PersonId>>>,
    pub accepted: u64,
}

/// A record the pass linked: its data, person, pass name and match weight.
pub(super) type Linked<T> = (T, PersonId, &'static str, Option<f64>);

impl<'p, T> SourceLinkage<'p, T> {
    pub fn new(
        source: &str,
        side: &'p PersonSide,
        cfg: ProbConfig,
        decisions: &'p Decisions,
    ) -> SourceLinkage<'p, T> {
        // The same source gives the same random pairs on every run of the same data.
        let seed = source.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
        SourceLinkage {
            source: source.to_string(),
            pass: SourcePass::new(side, cfg, seed),
            decisions,
            accepted_map: decisions.accepted_in(source),
            rejected_map: decisions.rejected_in(source),
            accepted: 0,
        }
    }

    /// The person a reviewer accepted for this record, if any.
    pub fn accepted_person(&self, key: Option<&Token>) -> Option<PersonId> {
        self.accepted_map?.get(key?).copied()
    }

    /// Whether the pass still wants anchor pairs (records an exact pass linked).
    pub fn wants_anchor(&self) -> bool {
        self.pass.anchors() < ANCHORS_PER_SOURCE
    }

    /// Offers a record exact pass `pass` linked to `person`, as an anchor for EM.
    pub fn anchor(&mut self, features: &Features, person: PersonId, pass: &str) {
        use crate::link::prob::compare::CompField;
        // An exact pass selected its records for agreeing on what it keys on: those
        // fields are censored. The SSN pass's anchors agree on SSN by construction (and
        // a source without name passes, such as wages, has no others), so how often
        // matches' SSNs differ by a digit or two is left to EM on the candidate pairs,
        // where the other fields' anchored m tells the matches apart.
        let censored: &[CompField] = if pass == "ssn_dob" {
            &[CompField::Ssn, CompField::Dob]
        } else if pass.starts_with("ssn") {
            &[CompField::Ssn]
        } else {
            &[
                CompField::First,
                CompField::Last,
                CompField::Dob,
                CompField::Sex,
                CompField::Zip,
            ]
        };
        self.pass.anchor(features, person, censored);
    }

    /// Offers a batch's unlinked records (`blocks`: their blocking keys, in the same
    /// order). `encode` computes the features of the batch rows it is given with their
    /// blocking keys, and is asked only for the records worth comparing; `make` gives the
    /// `file:row` reference and data of `todo[i]`, made only if it has a candidate. A
    /// record that has none is counted by its exact outcome at once.
    pub fn offer_batch<E>(
        &mut self,
        todo: &[Unlinked],
        blocks: &Distinct<BlockKeys>,
        encode: impl FnOnce(&[usize], &[BlockKeys]) -> Result<Vec<Features>, E>,
        mut make: impl FnMut(usize) -> (String, T),
        stats: &mut LinkStats,
    ) -> Result<(), E> {
        let mut wanted = Vec::new();
        // Looked up once per distinct identity: a worker's rows share their keys.
        let met = self.pass.meets(&blocks.values);
        for (i, (u, &slot)) in todo.iter().zip(&blocks.slots).enumerate() {
            if blocks.get(i).is_empty() {
                stats.count(u.exact);
                continue;
            }
            let s = self.pass.screen_met(met[slot as usize]);
            if s.wants_encoding() {
                wanted.push((i, s));
            } else {
                stats.count(u.exact);
            }
        }
        let rows: Vec<usize> = wanted.iter().map(|&(i, _)| todo[i].row).collect();
        let keys: Vec<BlockKeys> = wanted.iter().map(|&(i, _)| *blocks.get(i)).collect();
        let features = encode(&rows, &keys)?;
        let records: Vec<(&Features, &[PersonId])> = wanted
            .iter()
            .zip(&features)
            .map(|(&(i, _), f)| {
                let rejected = todo[i].key.and_then(|k| self.rejected_map?.get(&k));
                (f, rejected.map_or(&[][..], Vec::as_slice))
            })
            .collect();
        let pairs = self.pass.compare_all(&records);
        drop(records);
        for ((&(i, s), f), p) in wanted.iter().zip(&features).zip(pairs) {
            let u = &todo[i];
            let waiting = || {
                let (record_ref, data) = make(i);
                Waiting {
                    exact: u.exact,
                    record_ref,
                    last4: u.last4,
                    data,
                }
            };
            if !self.pass.admit(f, s, p, u.key, waiting) {
                stats.count(u.exact);
            }
        }
        Ok(())
    }

    /// Decides every waiting record: links come back for the caller to record, review
    /// items go to `reviews`, changed held decisions to `held`, and `stats` counts every
    /// record once.
    pub fn finish(
        self,
        stats: &mut LinkStats,
        person_last4: &HashMap<PersonId, Last4>,
        reviews: &mut Vec<NewLinkReview>,
        held: &mut HeldChanges,
    ) -> (Vec<Linked<T>>, PassReport)
    where
        T: Send,
    {
        let source = self.source.as_str();
        let memory = self.decisions.held_in(source);
        let earlier = |key: &Token| memory.and_then(|m| m.get(key)).copied();
        let hold_margin = self.pass.config().hold_margin;
        let review_threshold = self.pass.config().review_threshold;
        let (decisions, report) = self.pass.finish(earlier);
        // What to hold for each record key: its decision when every row of the key (wage
        // rows share their SSN's) got the same one and it is near or above the review
        // band; otherwise nothing.
        let mut by_key: TokenMap<Option<Held>> = TokenMap::default();
        for d in &decisions {
            let Some(key) = d.record_key else { continue };
            let keep = (d.band != Band::NonLink || d.weight >= review_threshold - hold_margin)
                .then_some(Held {
                    person: d.person,
                    band: d.band,
                });
            by_key
                .entry(key)
                .and_modify(|h| {
                    if *h != keep {
                        *h = None;
                    }
                })
                .or_insert(keep);
        }
        for (key, keep) in by_key {
            let before = earlier(&key);
            match keep {
                Some(h) if before != Some(h) => held.save.push(HeldRow {
                    source: source.to_string(),
                    record_key: key,
                    person_id: h.person,
                    band: h.band,
                }),
                None if before.is_some() => held.forget.push((source.to_string(), key)),
                _ => {}
            }
        }
        let mut linked = Vec::new();
        let mut items: HashMap<(Token, PersonId), usize> = HashMap::new();
        for d in decisions {
            let Decision {
                payload,
                record_key,
                band,
                person,
                weight,
                ..
            } = &d;
            match band {
                Band::Link => {
                    stats.count_linked_by(PROBABILISTIC);
                }
                Band::Review => {
                    stats.count(payload.exact);
                    stats.review += 1;
                    if let Some(key) = record_key {
                        let fields: Vec<serde_json::Value> = d
                            .fields
                            .iter()
                            .map(|(f, l, w)| {
                                serde_json::json!({ "field": f, "level": l, "weight": round2(*w) })
                            })
                            .collect();
                        match items.get(&(*key, *person)) {
                            Some(&i) => {
                                let item: &mut NewLinkReview = &mut reviews[i];
                                item.rows += 1;
                                if *weight > item.weight {
                                    item.weight = round2(*weight);
                                    item.probability = d.probability;
                                    item.fields = serde_json::Value::Array(fields);
                                }
                            }
                            None => {
                                items.insert((*key, *person), reviews.len());
                                reviews.push(NewLinkReview {
                                    source: self.source.clone(),
                                    record_key: *key,
                                    person_id: *person,
                                    weight: round2(*weight),
                                    probability: d.probability,
                                    fields: serde_json::Value::Array(fields),
                                    rows: 1,
                                    record_ref: Some(payload.record_ref.clone()),
                                    record_ssn_last4: payload.last4.map(|l| l.to_string()),
                                    person_ssn_last4: person_last4
                                        .get(person)
                                        .map(|l| l.to_string()),
                                });
                            }
                        }
                    }
                }
                Band::NonLink => stats.count(payload.exact),
            }
            if d.band == Band::Link {
                linked.push((d.payload.data, d.person, PROBABILISTIC, Some(d.weight)));
            }
        }
        (linked, report)
    }
}

/// A run's changes to the held decisions, written at its commit.
#[derive(Debug, Default)]
pub(super) struct HeldChanges {
    pub save: Vec<HeldRow>,
    pub forget: Vec<(String, Token)>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
