//! The Fellegi–Sunter model and its estimation by expectation–maximisation.
//!
//! For each field `f` and agreement level `l`, `m[f][l]` is the probability of that level
//! among true matches and `u[f][l]` among non-matches. A pair's match weight is
//! `Σ_f log2(m[f][l_f] / u[f][l_f])` over its non-missing fields: the log-2 Bayes factor
//! of "same person" against "different people" (Fellegi & Sunter, JASA 1969).
//!
//! `u` comes from random pairs: an agency record and a participant drawn at random are,
//! but for one chance in a million, different people, so how often their fields agree is
//! what agreement by coincidence looks like. `m` (and the share of matches `λ`) is then
//! estimated by EM on the run's own candidate pairs with `u` held fixed (Winkler's
//! approach; Splink estimates `u` the same way): the E step gives each distinct
//! comparison pattern its posterior probability of being a match, the M step re-estimates
//! `m` and `λ` from those posteriors. Fields are assumed conditionally independent given
//! the match status, as in every Fellegi–Sunter application.
//!
//! Term frequencies: an exact agreement on a common surname is weaker evidence than on a
//! rare one. For exact first and last names the weight uses the value's own frequency in
//! the participant file in place of `u` (floored at the random-pair estimate's own
//! resolution), as Splink's term-frequency adjustment does.

use super::compare::{COMP_FIELDS, CompField, Pattern};

/// Most levels any field has.
pub const MAX_LEVELS: usize = 6;

/// Probabilities per field and level (index 0, `missing`, is unused).
pub type Table = [[f64; MAX_LEVELS]; COMP_FIELDS.len()];

/// An estimated model.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Model {
    pub m: Table,
    pub u: Table,
    /// The probability that a record × participant pair drawn at random is a match (the
    /// prior of every pair; see [`Model::estimate`]).
    pub lambda: f64,
    pub iterations: u32,
    pub converged: bool,
    /// Candidate pairs the model was estimated on.
    pub pairs: u64,
    /// Random pairs `u` was estimated on.
    pub random_pairs: u64,
}

/// Smallest probability any level is given: a level never seen is rare, not impossible,
/// and a weight of ±∞ would let one field overrule every other.
const FLOOR: f64 = 1e-6;

/// Smallest `m` a weight is computed from: no single field's disagreement counts for
/// more than about ten bits against, so one badly keyed field (which noisy files carry)
/// cannot outvote every other field agreeing.
const M_FLOOR: f64 = 1e-3;

/// Anchors observing a field from which its `m` is taken from them and held (see
/// [`Model::estimate`]): enough for each level's share to a percent or so.
pub const ANCHORED: u64 = 500;

/// Where EM starts: matches mostly agree, and disagree more often the more the levels say
/// they differ. The exact numbers matter little; EM moves them.
fn initial_m() -> Table {
    let mut m = [[0.0; MAX_LEVELS]; COMP_FIELDS.len()];
    for f in COMP_FIELDS {
        let n = f.levels().len() - 1;
        let start: &[f64] = match n {
            5 => &[0.80, 0.10, 0.04, 0.03, 0.03],
            4 => &[0.80, 0.10, 0.05, 0.05],
            3 => &[0.85, 0.10, 0.05],
            _ => &[0.95, 0.05],
        };
        m[f.index()][1..=n].copy_from_slice(start);
    }
    m
}

/// Level frequencies over pattern counts, normalized per field over the non-missing
/// levels, with add-one smoothing.
pub fn level_frequencies(patterns: &[(Pattern, f64)]) -> Table {
    let mut t = [[0.0; MAX_LEVELS]; COMP_FIELDS.len()];
    for f in COMP_FIELDS {
        let n = f.levels().len();
        let mut counts = vec![1.0; n];
        for (p, w) in patterns {
            let l = p.level(f);
            if l > 0 {
                counts[l] += w;
            }
        }
        let total: f64 = counts[1..].iter().sum();
        for l in 1..n {
            t[f.index()][l] = (counts[l] / total).max(FLOOR);
        }
    }
    t
}

impl Model {
    /// Estimates `m` and `λ` by EM on `candidates` (pattern, count), with `u` fixed.
    ///
    /// `λ` is the share of matches among *all* `all_pairs` record × participant pairs,
    /// not among the candidates: `u` comes from random pairs, so the prior it pairs with
    /// is a random pair's, and blocking (which keeps every match, see the README) only
    /// spares comparing pairs that would score as non-matches anyway. Taking the share
    /// among candidates instead made a common first and last name in one ZIP (27 bits)
    /// look certain at state scale, where 10^10 pairs hold a few hundred such
    /// coincidences; the generated heavy-noise state linked 114 strangers that way.
    ///
    /// `anchors` are pairs known to match (an exact pass linked them), with the fields
    /// that pass selected on set missing. A field that at least [`ANCHORED`] anchors
    /// observe takes its `m` from them and keeps it: EM then moves only the other
    /// fields' `m` (anchors counting as known matches there) and `λ`. Left free, EM on a
    /// state's candidate pairs (at 100,000 participants over a million, most of them
    /// relatives sharing a surname, a ZIP and often a birth date) takes the households
    /// for the match class and learns that matches disagree on first names as often as
    /// strangers do (measured: a first-name disagreement weighing 0 bits, and 11,754
    /// review items for 1,640 links in one source). Known matches say how matches look;
    /// the candidates say how many there are.
    pub fn estimate(
        candidates: &[(Pattern, u64)],
        anchors: &[(Pattern, u64)],
        u: Table,
        random_pairs: u64,
        all_pairs: f64,
    ) -> Model {
        let n_anchors: u64 = anchors.iter().map(|a| a.1).sum();
        let mut fixed = [false; COMP_FIELDS.len()];
        let mut m = if n_anchors >= 50 {
            let weighted: Vec<(Pattern, f64)> =
                anchors.iter().map(|&(p, n)| (p, n as f64)).collect();
            let from_anchors = level_frequencies(&weighted);
            // A field every anchor left out keeps the generic start.
            let generic = initial_m();
            let mut m = generic;
            for f in COMP_FIELDS {
                let seen: u64 = anchors
                    .iter()
                    .filter(|(p, _)| p.level(f) > 0)
                    .map(|a| a.1)
                    .sum();
                if seen >= 50 {
                    m[f.index()] = from_anchors[f.index()];
                }
                fixed[f.index()] = seen >= ANCHORED;
            }
            m
        } else {
            initial_m()
        };
        let total: f64 = candidates.iter().map(|(_, n)| *n as f64).sum();
        let all_pairs = all_pairs.max(total);
        let mut iterations = 0;
        let mut converged = false;
        if total == 0.0 {
            return Model {
                m,
                u,
                lambda: FLOOR,
                iterations,
                converged: true,
                pairs: 0,
                random_pairs,
            };
        }
        let mut lambda = (0.1 * total / all_pairs).clamp(FLOOR * FLOOR, 0.5);
        while iterations < 500 {
            iterations += 1;
            let mut num = [[0.0; MAX_LEVELS]; COMP_FIELDS.len()];
            let mut den = [0.0; COMP_FIELDS.len()];
            let mut matches = 0.0;
            for &(p, n) in candidates {
                let g = posterior(&m, &u, lambda, p, None) * n as f64;
                matches += g;
                for f in COMP_FIELDS {
                    let l = p.level(f);
                    if l > 0 {
                        num[f.index()][l] += g;
                        den[f.index()] += g;
                    }
                }
            }
            for &(p, n) in anchors {
                for f in COMP_FIELDS {
                    let l = p.level(f);
                    if l > 0 {
                        num[f.index()][l] += n as f64;
                        den[f.index()] += n as f64;
                    }
                }
            }
            let mut change: f64 = 0.0;
            for f in COMP_FIELDS {
                let i = f.index();
                if den[i] <= 0.0 || fixed[i] {
                    continue;
                }
                for l in 1..f.levels().len() {
                    let v = (num[i][l] / den[i]).max(FLOOR);
                    change = change.max((v - m[i][l]).abs());
                    m[i][l] = v;
                }
            }
            let new_lambda = (matches / all_pairs).clamp(FLOOR * FLOOR, 1.0 - FLOOR);
            // Relative: λ is tiny at state scale.
            change = change.max((new_lambda / lambda - 1.0).abs() * 1e-3);
            lambda = new_lambda;
            if change < 1e-7 {
                converged = true;
                break;
            }
        }
        Model {
            m,
            u,
            lambda,
            iterations,
            converged,
            pairs: total as u64,
            random_pairs,
        }
    }

    /// The weight of one field's level; `u_override` replaces `u` (term frequency).
    pub fn field_weight(&self, f: CompField, level: usize, u_override: Option<f64>) -> f64 {
        if level == 0 {
            return 0.0;
        }
        let u = u_override.unwrap_or(self.u[f.index()][level]).max(FLOOR);
        (self.m[f.index()][level].max(M_FLOOR) / u).log2()
    }

    /// The Bayes factor of a pattern in bits, the fields' weights summed; `tf` gives the
    /// term-frequency `u` of the exact first and last names where known.
    pub fn weight(&self, p: Pattern, tf: Tf) -> f64 {
        COMP_FIELDS
            .iter()
            .map(|&f| self.field_weight(f, p.level(f), tf.u_for(f, p.level(f))))
            .sum()
    }

    /// The prior odds of a pair being a match, in bits (`log2(λ / (1 − λ))`).
    pub fn prior(&self) -> f64 {
        (self.lambda / (1.0 - self.lambda)).log2()
    }

    /// The match weight the bands are drawn on: the posterior odds in bits, prior plus
    /// Bayes factor, as Splink defines it (0 is even odds, 10 about 1,000 to 1).
    pub fn match_weight(&self, p: Pattern, tf: Tf) -> f64 {
        self.prior() + self.weight(p, tf)
    }

    /// The probability that a pair with this pattern is a match, among candidate pairs.
    pub fn probability(&self, p: Pattern, tf: Tf) -> f64 {
        posterior(&self.m, &self.u, self.lambda, p, Some(tf))
    }
}

/// Term-frequency `u` of a pair's exact first and last names (`None` where unknown).
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Tf {
    pub first: Option<f64>,
    pub last: Option<f64>,
}

impl Tf {
    fn u_for(self, f: CompField, level: usize) -> Option<f64> {
        match (f, level) {
            (CompField::First, 1) => self.first,
            (CompField::Last, 1) => self.last,
            _ => None,
        }
    }
}

fn posterior(m: &Table, u: &Table, lambda: f64, p: Pattern, tf: Option<Tf>) -> f64 {
    // In log space: a dozen strong agreements multiply to numbers f64 still holds, but
    // the logs make the ratio safe for any pattern.
    let mut log_ratio = (lambda / (1.0 - lambda)).ln();
    for f in COMP_FIELDS {
        let l = p.level(f);
        if l == 0 {
            continue;
        }
        let uf = tf
            .and_then(|t| t.u_for(f, l))
            .unwrap_or(u[f.index()][l])
            .max(FLOOR);
        log_ratio += (m[f.index()][l].max(M_FLOOR) / uf).ln();
    }
    1.0 / (1.0 + (-log_ratio).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Draws patterns from a known model; EM must recover its m and λ.
    #[test]
    fn em_recovers_known_m_and_lambda() {
        let mut true_m = [[0.0; MAX_LEVELS]; COMP_FIELDS.len()];
        let mut true_u = [[0.0; MAX_LEVELS]; COMP_FIELDS.len()];
        for f in COMP_FIELDS {
            let n = f.levels().len() - 1;
            let (m, u): (&[f64], &[f64]) = match n {
                5 => (
                    &[0.65, 0.15, 0.05, 0.05, 0.10],
                    &[0.01, 0.03, 0.06, 0.10, 0.80],
                ),
                4 => (&[0.70, 0.15, 0.05, 0.10], &[0.01, 0.04, 0.15, 0.80]),
                3 => (&[0.80, 0.15, 0.05], &[0.03, 0.12, 0.85]),
                _ => (&[0.97, 0.03], &[0.50, 0.50]),
            };
            true_m[f.index()][1..=n].copy_from_slice(m);
            true_u[f.index()][1..=n].copy_from_slice(u);
        }
        let lambda = 0.08;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let draw = |rng: &mut rand_chacha::ChaCha8Rng, probs: &[f64]| -> usize {
            let x: f64 = rng.random();
            let mut acc = 0.0;
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if x < acc {
                    return i + 1;
                }
            }
            probs.len()
        };
        let mut counts = std::collections::HashMap::new();
        let n = 400_000;
        for _ in 0..n {
            let is_match = rng.random::<f64>() < lambda;
            let mut p = Pattern::default();
            for f in COMP_FIELDS {
                let k = f.levels().len() - 1;
                let t = if is_match { &true_m } else { &true_u };
                let l = draw(&mut rng, &t[f.index()][1..=k]);
                p.0 |= (l as u32) << (4 * f.index());
            }
            *counts.entry(p).or_insert(0u64) += 1;
        }
        let candidates: Vec<(Pattern, u64)> = counts.into_iter().collect();
        let model = Model::estimate(&candidates, &[], true_u, 0, n as f64);
        assert!(model.converged, "{} iterations", model.iterations);
        assert!((model.lambda - lambda).abs() < 0.005, "λ {}", model.lambda);
        for f in COMP_FIELDS {
            let n = f.levels().len();
            let pairs = model.m[f.index()][1..n]
                .iter()
                .zip(&true_m[f.index()][1..n]);
            for (l, (&got, &want)) in pairs.enumerate().map(|(i, x)| (i + 1, x)) {
                assert!(
                    (got - want).abs() < 0.02,
                    "{} level {l}: m {got:.3}, true {want:.3}",
                    f.name()
                );
            }
        }
        // Agreement weighs for, disagreement against.
        let all_exact = Pattern(0x111111);
        assert!(model.weight(all_exact, Tf::default()) > 20.0);
        assert!(model.probability(all_exact, Tf::default()) > 0.999);
        // A common exact surname is weaker evidence than the average one.
        let common = Tf {
            first: None,
            last: Some(0.05),
        };
        assert!(model.weight(all_exact, common) < model.weight(all_exact, Tf::default()));
    }

    /// Candidates dominated by households (same surname, birth date and ZIP, another
    /// first name and SSN) pull free EM to them; anchored fields keep the matches' `m`.
    #[test]
    fn anchored_fields_are_not_pulled_to_households() {
        let pat = |levels: [usize; 6]| {
            let mut p = Pattern::default();
            for (f, l) in COMP_FIELDS.iter().zip(levels) {
                p = p.with(*f, l);
            }
            p
        };
        // ssn, first, last, dob, zip, sex (SSN and names have five levels, DOB four)
        let household = pat([5, 5, 1, 1, 1, 2]);
        let typo_match = pat([2, 1, 1, 1, 1, 1]);
        let stranger = pat([5, 5, 5, 4, 3, 2]);
        let candidates = vec![(household, 50_000), (typo_match, 500), (stranger, 200_000)];
        let anchors = vec![
            (pat([1, 1, 1, 1, 1, 1]), 9_000),
            (pat([1, 2, 1, 1, 3, 1]), 1_000),
        ];
        // Agreement by chance: a surname one pair in a thousand, a birth date one in
        // twenty thousand, a ZIP one in two hundred, a near-identical SSN one in 10^5.
        let mut u = [[0.0; MAX_LEVELS]; COMP_FIELDS.len()];
        u[CompField::Ssn.index()][1..=5].copy_from_slice(&[1e-9, 1e-5, 5e-5, 5e-5, 0.99989]);
        u[CompField::First.index()][1..=5].copy_from_slice(&[0.005, 0.01, 0.05, 0.05, 0.885]);
        u[CompField::Last.index()][1..=5].copy_from_slice(&[0.001, 0.004, 0.03, 0.03, 0.935]);
        u[CompField::Dob.index()][1..=4].copy_from_slice(&[5e-5, 5e-4, 0.01, 0.98945]);
        u[CompField::Zip.index()][1..=3].copy_from_slice(&[0.005, 0.05, 0.945]);
        u[CompField::Sex.index()][1..=2].copy_from_slice(&[0.5, 0.5]);
        let free = Model::estimate(&candidates, &[], u, 1_000_000, 250_500.0);
        let anchored = Model::estimate(&candidates, &anchors, u, 1_000_000, 250_500.0);
        let first = CompField::First;
        // Free EM: the households are the "matches", first names disagree among them.
        assert!(free.field_weight(first, 5, None) > -1.0);
        // Anchored: a first-name disagreement weighs heavily against, households do not
        // link, the typo'd matches do.
        assert!(anchored.field_weight(first, 5, None) < -5.0);
        assert!(anchored.weight(household, Tf::default()) < 15.0);
        assert!(free.weight(household, Tf::default()) > 25.0);
        assert!(anchored.weight(typo_match, Tf::default()) > 15.0);
        assert!(anchored.probability(typo_match, Tf::default()) > 0.99);
    }

    #[test]
    fn level_frequencies_ignore_missing_and_smooth() {
        let t = level_frequencies(&[(Pattern(0x000004), 98.0), (Pattern(0x000001), 0.0)]);
        let ssn = &t[CompField::Ssn.index()];
        assert!(ssn[4] > 0.9 && ssn[1] > 0.0);
        let sum: f64 = ssn[1..CompField::Ssn.levels().len()].iter().sum();
        assert!((sum - 1.0).abs() < 1e-9);
    }
}
