//! Person resolution: every participant row resolves to a stable person, new people get a
//! `person_key` (and, without an SSN, a temporary ID), and disagreements go to review.
//!
//! The rules, in the order they are tried:
//! 1. A valid SSN token finds its person. Rows sharing one SSN token are one person.
//!    An SSN not seen before is attached to the person the row's temporary ID, record id
//!    or (unique) strong name+DOB token names, when that person has no SSN yet: that is
//!    "a person with a temporary ID later supplies an SSN". When the temporary ID or record
//!    id names a person without an SSN while the SSN already belongs to someone else, the
//!    two are merged by a pointer (never by deleting).
//! 2. Without a valid SSN: a carried temporary ID (its check character already verified),
//!    else the record id the case-management system gave the row, else a strong name+DOB
//!    token that names exactly one person.
//! 3. Otherwise a new person with a new temporary ID; rows without SSN that share a
//!    record id or name+DOB token become one new person.
//!
//! Whenever identifiers point at two different people that both have an SSN, nothing is
//! linked: the pair goes to the review queue for a person to decide.
//!
//! Resolution never depends on row order: rows are grouped by content, and the only
//! order-sensitive step (allocating new ids) walks groups in token order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::ids::{IdError, PersonKey, TempId};
use super::token::{RULES, Rule, Token, TokenHashBuilder, TokenMap};

/// Internal person id: compact, never leaves the store and the lineage person sets.
pub type PersonId = i64;

/// `person_tokens.rule` value of a record-id token (case-management or agency record).
pub const RECORD_RULE: i32 = 100;

/// Added to the rule number of a token made under the key a rotation moves to
/// (`xmatch key rotate`): both keys' tokens live in one table until `retire` deletes the
/// old ones and takes this offset off the new ones. In memory both sit in the same maps:
/// tokens under two keys never coincide, so every lookup finds the person whichever key
/// a record was tokenized under.
pub const NEXT_KEY_RULE_OFFSET: i32 = 1000;

/// Which identifiers one participant row carries (already normalized and tokenized).
#[derive(Debug, Clone, Default)]
pub struct RowIdentity {
    pub ssn: Option<Token>,
    pub name_dob: Option<Token>,
    /// Every token of the row, by rule, to remember for the person.
    pub tokens: Vec<(Rule, Token)>,
    pub record: Option<Token>,
    pub temp_id: Option<TempId>,
}

#[derive(Debug, Clone)]
struct Person {
    key: PersonKey,
    merged_into: Option<PersonId>,
}

/// The registry keeps one token map per rule (at the rule's [`Rule::index`], which is
/// also its stored `person_tokens.rule`) and one more for record tokens.
const MAPS: usize = RULES.len() + 1;

/// The map of a stored rule number (either key's).
fn slot(rule: i32) -> Result<usize, IdError> {
    let base = if rule >= NEXT_KEY_RULE_OFFSET {
        rule - NEXT_KEY_RULE_OFFSET
    } else {
        rule
    };
    match usize::try_from(base) {
        Ok(i) if i < RULES.len() => Ok(i),
        _ if base == RECORD_RULE => Ok(RULES.len()),
        _ => Err(IdError::UnknownRule(rule)),
    }
}

/// Who holds one token: nearly always one person, so that case costs no allocation.
/// `>= 0` is the person id itself; `< 0` is `!i` for `shared[i]`, the list of several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot(i64);

/// The registry as loaded from the store, plus what this run adds.
///
/// Sized for a state: at a million participants it holds about six million tokens, so
/// persons live in a vector indexed by their (dense, store-allocated) id and each token
/// map stores one machine word per token.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    /// Indexed by person id; ids are allocated densely from 1 by this registry.
    persons: Vec<Option<Person>>,
    /// See [`MAPS`].
    tokens: [TokenMap<Slot>; MAPS],
    /// Holder lists of tokens held by more than one person.
    shared: Vec<Vec<PersonId>>,
    temp_ids: HashMap<TempId, PersonId>,
    keys: HashSet<PersonKey>,
    /// Review pairs already queued, so a rerun does not report them as new.
    known_reviews: HashSet<(String, PersonId, PersonId)>,
    /// Pairs (smaller id first) a person unmerged: never merged again.
    merge_blocks: HashSet<(PersonId, PersonId)>,
    next_id: PersonId,
}

/// Who holds a token, after following merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Nobody,
    One(PersonId),
    Several,
}

/// A set of persons as flags indexed by id: the registry's ids are dense.
#[derive(Debug, Default, Clone)]
pub struct PersonFlags(Vec<bool>);

impl PersonFlags {
    pub fn contains(&self, p: PersonId) -> bool {
        usize::try_from(p).is_ok_and(|i| self.0.get(i).copied().unwrap_or(false))
    }

    pub fn insert(&mut self, p: PersonId) {
        let Ok(i) = usize::try_from(p) else { return };
        if i >= self.0.len() {
            self.0.resize(i + 1, false);
        }
        self.0[i] = true;
    }
}

/// A review-queue entry: two persons whose identifiers disagree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Review {
    pub kind: &'static str,
    pub person_a: PersonId,
    pub person_b: PersonId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub from: PersonId,
    pub into: PersonId,
    pub reason: &'static str,
}

/// What a resolution adds to the registry; the pipeline commits it with the run.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub new_persons: Vec<(PersonId, PersonKey)>,
    pub new_tokens: Vec<(i32, Token, PersonId)>,
    pub new_temp_ids: Vec<(TempId, PersonId)>,
    pub merges: Vec<Merge>,
    pub reviews: Vec<Review>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ResolveStats {
    pub rows: u64,
    pub persons: u64,
    pub new_persons: u64,
    pub new_temp_ids: u64,
    /// Persons known only by a temporary ID who now supplied an SSN.
    pub ssn_linked: u64,
    pub merges: u64,
    pub reviews: u64,
}

#[derive(Debug)]
pub struct Resolution {
    /// The surviving person of each input row.
    pub person_of_row: Vec<PersonId>,
    pub changes: Changes,
    pub stats: ResolveStats,
}

impl Registry {
    /// Builds the in-memory registry from the store's rows.
    pub fn from_rows(
        persons: impl IntoIterator<Item = (PersonId, String, Option<PersonId>)>,
        tokens: impl IntoIterator<Item = (i32, Token, PersonId)>,
        temp_ids: impl IntoIterator<Item = (String, PersonId)>,
    ) -> Result<Registry, IdError> {
        let mut reg = Registry::default();
        let persons = persons.into_iter();
        reg.persons.reserve(persons.size_hint().0 + 1);
        reg.keys.reserve(persons.size_hint().0);
        for (id, key, merged_into) in persons {
            let key = PersonKey::parse(&key)?;
            reg.keys.insert(key.clone());
            let i = reg.index_for(id)?;
            reg.persons[i] = Some(Person { key, merged_into });
            reg.next_id = reg.next_id.max(id);
        }
        reg.next_id += 1;
        let tokens = tokens.into_iter();
        // Five rules per person: reserving a fifth of the rows per map avoids most of the
        // rehashing while the maps fill.
        let per_map = tokens.size_hint().0 / RULES.len();
        for map in reg.tokens.iter_mut().take(RULES.len()) {
            map.reserve(per_map);
        }
        for (rule, token, person) in tokens {
            reg.insert_token(slot(rule)?, token, person);
        }
        for (t, person) in temp_ids {
            reg.temp_ids.insert(TempId::parse(&t)?, person);
        }
        Ok(reg)
    }

    /// The vector index of person `id`, growing the vector to hold it.
    fn index_for(&mut self, id: PersonId) -> Result<usize, IdError> {
        // Ids come from this registry's own counter, so they are dense; a wild id would
        // make the vector absurdly large rather than fail later.
        let i = usize::try_from(id)
            .ok()
            .filter(|&i| i > 0 && i <= 4 * (self.persons.len() + 1_000_000))
            .ok_or(IdError::PersonId(id))?;
        if i >= self.persons.len() {
            self.persons.resize(i + 1, None);
        }
        Ok(i)
    }

    fn person(&self, id: PersonId) -> Option<&Person> {
        self.persons.get(usize::try_from(id).ok()?)?.as_ref()
    }

    /// Room for `n` more tokens in every map.
    fn reserve_tokens(&mut self, n: usize) {
        for map in &mut self.tokens {
            map.reserve(n);
        }
    }

    /// Adds `person` as a holder of `token`; false if it already held it.
    fn insert_token(&mut self, slot: usize, token: Token, person: PersonId) -> bool {
        use std::collections::hash_map::Entry;
        match self.tokens[slot].entry(token) {
            Entry::Vacant(v) => {
                v.insert(Slot(person));
                true
            }
            Entry::Occupied(mut o) => {
                let Slot(s) = *o.get();
                if s >= 0 {
                    if s == person {
                        return false;
                    }
                    o.insert(Slot(!(self.shared.len() as i64)));
                    self.shared.push(vec![s, person]);
                    true
                } else {
                    let list = &mut self.shared[!s as usize];
                    if list.contains(&person) {
                        return false;
                    }
                    list.push(person);
                    true
                }
            }
        }
    }

    /// Persons holding `token` of the stored rule `slot`, as stored (not followed).
    fn stored_holders(&self, slot: usize, token: &Token) -> &[PersonId] {
        match self.tokens[slot].get(token) {
            None => &[],
            Some(Slot(s)) if *s >= 0 => std::slice::from_ref(s),
            Some(Slot(s)) => &self.shared[!*s as usize],
        }
    }

    /// Adds the review pairs already in the queue.
    pub fn with_reviews(
        mut self,
        reviews: impl IntoIterator<Item = (String, PersonId, PersonId)>,
    ) -> Registry {
        self.known_reviews.extend(reviews);
        self
    }

    /// Adds the pairs of persons an unmerge said are two people.
    pub fn with_merge_blocks(
        mut self,
        pairs: impl IntoIterator<Item = (PersonId, PersonId)>,
    ) -> Registry {
        self.merge_blocks
            .extend(pairs.into_iter().map(|(a, b)| (a.min(b), a.max(b))));
        self
    }

    /// Remembers `token` (stored rule number `rule`) for `person`: a rotation's new-key
    /// tokens, added after resolution. `true` when the registry did not hold it for that
    /// person yet (the caller then stores it).
    pub fn add_next_key_token(
        &mut self,
        rule: i32,
        token: Token,
        person: PersonId,
    ) -> Result<bool, IdError> {
        let s = slot(rule)?;
        Ok(self.insert_token(s, token, person))
    }

    /// Persons known, merged ones included.
    pub fn len(&self) -> usize {
        self.persons.iter().filter(|p| p.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.persons.iter().all(Option::is_none)
    }

    /// Follows merge pointers to the surviving person.
    pub fn survivor(&self, mut id: PersonId) -> PersonId {
        while let Some(next) = self.person(id).and_then(|p| p.merged_into) {
            id = next;
        }
        id
    }

    pub fn person_key(&self, id: PersonId) -> Option<&PersonKey> {
        self.person(self.survivor(id)).map(|p| &p.key)
    }

    /// The key of every person, indexed by id: a merged person's entry is the key of
    /// the person it was merged into.
    pub fn keys_by_person(&self) -> Vec<Option<PersonKey>> {
        (0..self.persons.len())
            .map(|i| self.person_key(i as PersonId).cloned())
            .collect()
    }

    /// Surviving persons holding `(rule, token)`, deduplicated and sorted.
    pub fn holders(&self, rule: i32, token: &Token) -> Vec<PersonId> {
        let Ok(slot) = slot(rule) else {
            return Vec::new();
        };
        let mut out: Vec<PersonId> = self
            .stored_holders(slot, token)
            .iter()
            .map(|&p| self.survivor(p))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Who holds `token` of `rule`, followed to survivors. Allocates nothing: the
    /// cross-match asks this once per pass for every record of every source.
    pub fn holder(&self, rule: Rule, token: &Token) -> Holder {
        let mut found = Holder::Nobody;
        for &p in self.stored_holders(rule.index(), token) {
            let p = self.survivor(p);
            match found {
                Holder::Nobody => found = Holder::One(p),
                Holder::One(q) if q == p => {}
                _ => return Holder::Several,
            }
        }
        found
    }

    fn ssn_holder(&self, token: &Token) -> Option<PersonId> {
        self.holders(Rule::Ssn.index() as i32, token)
            .first()
            .copied()
    }

    /// Surviving persons that hold an SSN token.
    pub fn persons_with_ssn(&self) -> PersonFlags {
        let mut out = PersonFlags::default();
        out.0.reserve(self.persons.len());
        let ssn = Rule::Ssn.index();
        for (token, _) in self.tokens[ssn].iter() {
            for &p in self.stored_holders(ssn, token) {
                out.insert(self.survivor(p));
            }
        }
        out
    }

    /// Temporary IDs by surviving person (all of them, for secure-zone files).
    pub fn temp_ids_by_person(&self) -> HashMap<PersonId, Vec<&TempId>> {
        let mut out: HashMap<PersonId, Vec<&TempId>> = HashMap::new();
        for (t, p) in &self.temp_ids {
            out.entry(self.survivor(*p)).or_default().push(t);
        }
        out
    }

    /// Resolves participant rows, updating this registry in memory and returning what
    /// changed so the caller can commit it.
    pub fn resolve(&mut self, rows: &[RowIdentity]) -> Result<Resolution, IdError> {
        Resolver::new(self, rows).run()
    }

    fn new_person(&mut self, changes: &mut Changes) -> Result<PersonId, IdError> {
        let key = loop {
            let k = PersonKey::generate()?;
            // 55 random bits: a collision is astronomically rare, but cheap to rule out.
            if self.keys.insert(k.clone()) {
                break k;
            }
        };
        // Ids start at 1 (an empty registry's counter is 0).
        let id = self.next_id.max(1);
        self.next_id = id + 1;
        let i = self.index_for(id)?;
        self.persons[i] = Some(Person {
            key: key.clone(),
            merged_into: None,
        });
        changes.new_persons.push((id, key));
        Ok(id)
    }

    fn new_temp_id(&mut self, person: PersonId, changes: &mut Changes) -> Result<(), IdError> {
        let t = loop {
            let t = TempId::generate()?;
            if !self.temp_ids.contains_key(&t) {
                break t;
            }
        };
        self.temp_ids.insert(t.clone(), person);
        changes.new_temp_ids.push((t, person));
        Ok(())
    }

    fn merge(
        &mut self,
        from: PersonId,
        into: PersonId,
        reason: &'static str,
        changes: &mut Changes,
    ) {
        let (from, into) = (self.survivor(from), self.survivor(into));
        if from == into
            || self
                .merge_blocks
                .contains(&(from.min(into), from.max(into)))
        {
            return;
        }
        if let Some(Some(p)) = usize::try_from(from)
            .ok()
            .and_then(|i| self.persons.get_mut(i))
        {
            p.merged_into = Some(into);
        }
        changes.merges.push(Merge { from, into, reason });
    }

    fn add_token(&mut self, rule: i32, token: Token, person: PersonId, changes: &mut Changes) {
        let slot = slot(rule).expect("rules added by the resolver are stored rules");
        if self.insert_token(slot, token, person) {
            changes.new_tokens.push((rule, token, person));
        }
    }
}

/// What a group of rows is resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Known(PersonId),
    /// A new person to be allocated for SSN group `n`.
    NewSsn(usize),
}

struct Resolver<'a> {
    reg: &'a mut Registry,
    rows: &'a [RowIdentity],
    changes: Changes,
    stats: ResolveStats,
    with_ssn: PersonFlags,
    reviews: BTreeSet<Review>,
}

impl<'a> Resolver<'a> {
    fn new(reg: &'a mut Registry, rows: &'a [RowIdentity]) -> Self {
        let with_ssn = reg.persons_with_ssn();
        Resolver {
            reg,
            rows,
            changes: Changes::default(),
            stats: ResolveStats {
                rows: rows.len() as u64,
                ..Default::default()
            },
            with_ssn,
            reviews: BTreeSet::new(),
        }
    }

    fn review(&mut self, kind: &'static str, a: PersonId, b: PersonId) {
        let (a, b) = (self.reg.survivor(a), self.reg.survivor(b));
        if a != b {
            self.reviews.insert(Review {
                kind,
                person_a: a.min(b),
                person_b: a.max(b),
            });
        }
    }

    /// Persons a row's temporary ID or record id names, temp ID first.
    fn named_by_row(&self, row: &RowIdentity) -> Vec<PersonId> {
        let mut out = Vec::new();
        if let Some(p) = row.temp_id.as_ref().and_then(|t| self.reg.temp_ids.get(t)) {
            out.push(self.reg.survivor(*p));
        }
        if let Some(rec) = &row.record {
            out.extend(self.reg.holders(RECORD_RULE, rec));
        }
        out
    }

    fn run(mut self) -> Result<Resolution, IdError> {
        let rows = self.rows;
        let mut person_of_row: Vec<Option<PersonId>> = vec![None; rows.len()];

        // 1. SSN groups, in token order (sorted, not a tree: a first run has a million).
        let mut by_ssn: Vec<(Token, usize)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((r.ssn?, i)))
            .collect();
        by_ssn.sort_unstable();
        let mut groups: Vec<(Token, Vec<usize>)> = Vec::new();
        for (t, i) in by_ssn {
            match groups.last_mut() {
                Some((last, members)) if *last == t => members.push(i),
                _ => groups.push((t, vec![i])),
            }
        }
        let mut targets = Vec::with_capacity(groups.len());
        // Reviews between a new SSN group (no person yet) and an existing person.
        let mut deferred: Vec<(usize, PersonId)> = Vec::new();
        for (g, (ssn, members)) in groups.iter().enumerate() {
            let named: BTreeSet<PersonId> = members
                .iter()
                .flat_map(|&i| self.named_by_row(&rows[i]))
                .collect();
            let target = if let Some(p) = self.reg.ssn_holder(ssn) {
                for q in named.into_iter().filter(|&q| q != p) {
                    if self.with_ssn.contains(q) {
                        self.review("record_or_temp_id_names_other_ssn", p, q);
                    } else {
                        // The temporary-ID person turns out to be a known SSN holder.
                        self.reg
                            .merge(q, p, "ssn_of_known_person", &mut self.changes);
                    }
                }
                Target::Known(p)
            } else {
                let (without, with): (Vec<PersonId>, Vec<PersonId>) =
                    named.into_iter().partition(|&q| !self.with_ssn.contains(q));
                let mut candidate = without.first().copied();
                deferred.extend(with.iter().map(|&q| (g, q)));
                if candidate.is_none() && with.is_empty() {
                    // A unique strong name+DOB token naming a person without an SSN.
                    let by_name: BTreeSet<PersonId> = members
                        .iter()
                        .filter_map(|&i| rows[i].name_dob)
                        .flat_map(|t| self.reg.holders(Rule::NameDob.index() as i32, &t))
                        .collect();
                    if by_name.len() == 1 {
                        let q = *by_name.first().expect("one element");
                        if !self.with_ssn.contains(q) {
                            candidate = Some(q);
                        }
                    }
                }
                for &extra in without.iter().skip(1) {
                    if let Some(c) = candidate {
                        self.reg
                            .merge(extra, c, "same_ssn_supplied", &mut self.changes);
                    }
                }
                match candidate {
                    Some(q) => {
                        self.stats.ssn_linked += 1;
                        self.with_ssn.insert(q);
                        Target::Known(q)
                    }
                    None => Target::NewSsn(g),
                }
            };
            targets.push(target);
        }
        let mut group_person = Vec::with_capacity(groups.len());
        for (g, target) in targets.into_iter().enumerate() {
            let p = match target {
                Target::Known(p) => self.reg.survivor(p),
                Target::NewSsn(_) => {
                    let p = self.reg.new_person(&mut self.changes)?;
                    self.with_ssn.insert(p);
                    p
                }
            };
            for &i in &groups[g].1 {
                person_of_row[i] = Some(p);
            }
            group_person.push(p);
        }
        for (g, q) in deferred {
            self.review("record_or_temp_id_names_other_ssn", group_person[g], q);
        }

        // Name+DOB tokens held by this batch's SSN groups count as candidates too
        // (sorted pairs, looked up by token).
        let mut batch_name: Vec<(Token, PersonId)> = rows
            .iter()
            .zip(&person_of_row)
            .filter_map(|(r, p)| Some((r.name_dob?, (*p)?)))
            .collect();
        batch_name.sort_unstable();
        batch_name.dedup();

        // 2. Rows without a valid SSN.
        let mut unresolved = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            if r.ssn.is_some() {
                continue;
            }
            if let Some(&p) = self.named_by_row(r).first() {
                person_of_row[i] = Some(p);
                continue;
            }
            if let Some(t) = r.name_dob {
                let mut cands: BTreeSet<PersonId> = self
                    .reg
                    .holders(Rule::NameDob.index() as i32, &t)
                    .into_iter()
                    .collect();
                let from = batch_name.partition_point(|(bt, _)| *bt < t);
                cands.extend(
                    batch_name[from..]
                        .iter()
                        .take_while(|(bt, _)| *bt == t)
                        .map(|(_, p)| *p),
                );
                let cands: BTreeSet<PersonId> =
                    cands.into_iter().map(|p| self.reg.survivor(p)).collect();
                if cands.len() == 1 {
                    person_of_row[i] = cands.first().copied();
                    continue;
                }
            }
            unresolved.push(i);
        }

        // 3. New persons for the rest: rows sharing a record id or name+DOB token are one.
        let mut uf = UnionFind::new(unresolved.len());
        let mut first_by_key: HashMap<(u8, Token), usize> = HashMap::new();
        for (k, &i) in unresolved.iter().enumerate() {
            for key in [
                rows[i].record.map(|t| (0u8, t)),
                rows[i].name_dob.map(|t| (1u8, t)),
            ]
            .into_iter()
            .flatten()
            {
                match first_by_key.get(&key) {
                    Some(&other) => uf.union(k, other),
                    None => {
                        first_by_key.insert(key, k);
                    }
                }
            }
        }
        // Allocate in content order so ids do not depend on row order.
        let mut components: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (k, &row) in unresolved.iter().enumerate() {
            components.entry(uf.find(k)).or_default().push(row);
        }
        let mut ordered: Vec<(Vec<Token>, Vec<usize>)> = components
            .into_values()
            .map(|members| {
                let mut keys: Vec<Token> = members
                    .iter()
                    .flat_map(|&i| [rows[i].record, rows[i].name_dob])
                    .flatten()
                    .collect();
                keys.sort_unstable();
                (keys, members)
            })
            .collect();
        ordered.sort();
        for (_, members) in ordered {
            let p = self.reg.new_person(&mut self.changes)?;
            self.reg.new_temp_id(p, &mut self.changes)?;
            for i in members {
                person_of_row[i] = Some(p);
            }
        }

        // Remember every token of every row for its person. New tokens come mostly with
        // new persons (a first run: a million persons, six million tokens), so the maps
        // are sized once for them rather than rehashed as they fill.
        let new_persons = self.changes.new_persons.len();
        self.reg.reserve_tokens(new_persons);
        self.changes.new_tokens.reserve(new_persons * MAPS);
        for (i, r) in rows.iter().enumerate() {
            let p = person_of_row[i].expect("every row is resolved");
            for &(rule, token) in &r.tokens {
                if rule == Rule::Ssn
                    && self
                        .reg
                        .ssn_holder(&token)
                        .is_some_and(|h| h != self.reg.survivor(p))
                {
                    continue;
                }
                self.reg
                    .add_token(rule.index() as i32, token, p, &mut self.changes);
            }
            if let Some(rec) = r.record {
                self.reg.add_token(RECORD_RULE, rec, p, &mut self.changes);
            }
        }

        // Different SSN holders sharing a strong name+DOB token: a typo'd SSN, or two
        // people with one name and birthday. Either way a person decides.
        let name_rule = Rule::NameDob.index() as i32;
        let mut seen_tokens: HashSet<Token, TokenHashBuilder> = HashSet::default();
        for r in rows {
            if let Some(t) = r.name_dob
                && seen_tokens.insert(t)
            {
                let holders: Vec<PersonId> = self
                    .reg
                    .holders(name_rule, &t)
                    .into_iter()
                    .filter(|&p| self.with_ssn.contains(p))
                    .collect();
                for a in 0..holders.len() {
                    for b in a + 1..holders.len() {
                        self.review("name_dob_shared_by_ssns", holders[a], holders[b]);
                    }
                }
            }
        }

        let person_of_row: Vec<PersonId> = person_of_row
            .into_iter()
            .map(|p| self.reg.survivor(p.expect("every row is resolved")))
            .collect();
        let known = &self.reg.known_reviews;
        self.changes.reviews = self
            .reviews
            .into_iter()
            .filter(|r| !known.contains(&(r.kind.to_string(), r.person_a, r.person_b)))
            .collect();
        for r in &self.changes.reviews {
            self.reg
                .known_reviews
                .insert((r.kind.to_string(), r.person_a, r.person_b));
        }
        let mut distinct = person_of_row.clone();
        distinct.sort_unstable();
        distinct.dedup();
        self.stats.persons = distinct.len() as u64;
        self.stats.new_persons = self.changes.new_persons.len() as u64;
        self.stats.new_temp_ids = self.changes.new_temp_ids.len() as u64;
        self.stats.merges = self.changes.merges.len() as u64;
        self.stats.reviews = self.changes.reviews.len() as u64;
        Ok(Resolution {
            person_of_row,
            changes: self.changes,
            stats: self.stats,
        })
    }
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind((0..n).collect())
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller root wins, so the result does not depend on call order.
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.0[hi] = lo;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        PersonKey::generate().unwrap().as_str().to_string()
    }

    #[test]
    fn shared_tokens_and_merges_decide_who_holds_a_token() {
        let ssn = Rule::Ssn.index() as i32;
        let name = Rule::NameDob.index() as i32;
        let (t1, t2) = ([1u8; 32], [2u8; 32]);
        let reg = Registry::from_rows(
            [(1, key(), None), (2, key(), None), (3, key(), Some(1))],
            [(ssn, t1, 1), (name, t2, 1), (name, t2, 2), (ssn, t2, 3)],
            [],
        )
        .unwrap();
        assert_eq!(reg.holder(Rule::Ssn, &t1), Holder::One(1));
        assert_eq!(reg.holder(Rule::NameDob, &t2), Holder::Several);
        // Person 3 was merged into 1: its token now names 1.
        assert_eq!(reg.holder(Rule::Ssn, &t2), Holder::One(1));
        assert_eq!(reg.holder(Rule::Ssn, &[9u8; 32]), Holder::Nobody);
        assert_eq!(reg.holders(name, &t2), vec![1, 2]);
        assert_eq!(reg.len(), 3);
        let with_ssn = reg.persons_with_ssn();
        assert!(with_ssn.contains(1) && !with_ssn.contains(2) && !with_ssn.contains(3));
        let keys = reg.keys_by_person();
        assert_eq!(
            keys[3], keys[1],
            "a merged person carries the survivor's key"
        );
        assert_ne!(keys[2], keys[1]);
    }

    #[test]
    fn the_same_holder_twice_is_one_holder_and_wild_ids_are_refused() {
        let name = Rule::NameDob.index() as i32;
        let t = [7u8; 32];
        let reg = Registry::from_rows(
            [(1, key(), None), (2, key(), Some(1))],
            [(name, t, 1), (name, t, 2)],
            [],
        )
        .unwrap();
        // Two stored holders, one survivor: not ambiguous.
        assert_eq!(reg.holder(Rule::NameDob, &t), Holder::One(1));
        assert!(matches!(
            Registry::from_rows([(0, key(), None)], [], []),
            Err(IdError::PersonId(0))
        ));
        assert!(matches!(
            Registry::from_rows([(1, key(), None)], [(42, t, 1)], []),
            Err(IdError::UnknownRule(42))
        ));
    }

    #[test]
    fn a_rotations_new_key_tokens_find_the_same_person() {
        let mut reg = Registry::from_rows(
            [(1, key(), None)],
            [(Rule::Ssn.index() as i32, [1; 32], 1)],
            Vec::<(String, PersonId)>::new(),
        )
        .unwrap();
        let next = Rule::Ssn.index() as i32 + NEXT_KEY_RULE_OFFSET;
        assert!(reg.add_next_key_token(next, [2; 32], 1).unwrap());
        assert!(
            !reg.add_next_key_token(next, [2; 32], 1).unwrap(),
            "held already"
        );
        for token in [[1; 32], [2; 32]] {
            assert_eq!(reg.holder(Rule::Ssn, &token), Holder::One(1));
        }
        assert!(
            reg.add_next_key_token(RECORD_RULE + NEXT_KEY_RULE_OFFSET, [3; 32], 1)
                .unwrap()
        );
        assert!(matches!(
            reg.add_next_key_token(NEXT_KEY_RULE_OFFSET + 42, [4; 32], 1),
            Err(IdError::UnknownRule(_))
        ));
    }
}
