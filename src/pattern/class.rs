//! Sets of characters, as RE2 builds them: sorted, disjoint ranges of code points, with the
//! case folding of `(?i)` (Go's `unicode.SimpleFold`, from [`super::fold_table`]).

use super::fold_table::RUNS;

/// The largest code point (Go's `unicode.MaxRune`).
pub const MAX_RUNE: u32 = 0x10_FFFF;
/// The surrogates, code points no UTF-8 text holds (a class may name them; they match nothing).
const SURROGATES: (u32, u32) = (0xD800, 0xDFFF);

/// A set of code points: sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CharSet {
    ranges: Vec<(u32, u32)>,
}

impl CharSet {
    pub fn single(c: u32) -> Self {
        Self {
            ranges: vec![(c, c)],
        }
    }

    /// The set of the given ranges (`lo <= hi` each), in any order.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let mut set = Self {
            ranges: ranges.into_iter().collect(),
        };
        set.clean();
        set
    }

    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    #[cfg(test)]
    pub fn contains(&self, c: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < c);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= c)
    }

    /// Adds the ranges of `other`.
    pub fn union(&mut self, other: &CharSet) {
        self.ranges.extend_from_slice(&other.ranges);
        self.clean();
    }

    /// Every code point not in the set (surrogates included, as in RE2).
    pub fn negated(&self) -> CharSet {
        let mut ranges = Vec::with_capacity(self.ranges.len() + 1);
        let mut next = 0u32;
        for &(lo, hi) in &self.ranges {
            if next < lo {
                ranges.push((next, lo - 1));
            }
            next = hi + 1;
        }
        if next <= MAX_RUNE {
            ranges.push((next, MAX_RUNE));
        }
        CharSet { ranges }
    }

    /// The set with every code point's case-folding orbit: what RE2 matches for it under
    /// `(?i)` (Go's `appendFoldedRange`, applied to each range).
    pub fn case_folded(&self) -> CharSet {
        let mut set = self.clone();
        // Each round adds the fold of every member; an orbit has at most four members.
        loop {
            let mut next = set.clone();
            next.ranges.extend(set.fold_images());
            next.clean();
            if next == set {
                return set;
            }
            set = next;
        }
    }

    /// The ranges each member folds to (a pair's range whole: the set's closure is what counts).
    fn fold_images(&self) -> Vec<(u32, u32)> {
        let mut images = Vec::new();
        for &(lo, hi) in &self.ranges {
            let first = RUNS.partition_point(|&(_, run_hi, _)| run_hi < lo);
            for &(run_lo, run_hi, delta) in RUNS[first..].iter().take_while(|run| run.0 <= hi) {
                let (a, b) = (lo.max(run_lo), hi.min(run_hi));
                if delta == 0 {
                    // Pairs (run_lo, run_lo + 1), ...: the pairs a..=b touches.
                    let start = a - (a - run_lo) % 2;
                    let end = b + 1 - (b - run_lo) % 2;
                    images.push((start, end));
                } else {
                    images.push((shift(a, delta), shift(b, delta)));
                }
            }
        }
        images
    }

    /// The ranges as text holds them: without the surrogates.
    pub fn scalar_ranges(&self) -> impl Iterator<Item = (char, char)> + '_ {
        self.ranges.iter().flat_map(|&(lo, hi)| {
            let (s_lo, s_hi) = SURROGATES;
            let below = (lo < s_lo).then(|| (lo, hi.min(s_lo - 1)));
            let above = (hi > s_hi).then(|| (lo.max(s_hi + 1), hi));
            below
                .into_iter()
                .chain(above)
                .filter_map(|(lo, hi)| Some((char::from_u32(lo)?, char::from_u32(hi)?)))
        })
    }

    /// Sorts and merges overlapping and adjacent ranges (Go's `cleanClass`). By insertion, which
    /// keeps a generic sort's code out of the module: classes are small, and mostly in order.
    fn clean(&mut self) {
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len());
        for &(lo, hi) in &self.ranges {
            // The first range that ends at or after lo - 1: it and those after may merge.
            let at = merged.partition_point(|&(_, end)| end.saturating_add(1) < lo);
            let mut end = at;
            let (mut lo, mut hi) = (lo, hi);
            while let Some(&(other_lo, other_hi)) = merged.get(end)
                && other_lo <= hi.saturating_add(1)
            {
                lo = lo.min(other_lo);
                hi = hi.max(other_hi);
                end += 1;
            }
            merged.splice(at..end, [(lo, hi)]);
        }
        self.ranges = merged;
    }
}

fn shift(c: u32, delta: i32) -> u32 {
    c.wrapping_add_signed(delta)
}

/// What Go's `unicode.SimpleFold` returns: the next code point of `c`'s case-folding orbit, or
/// `c` when it folds to nothing else.
pub fn simple_fold(c: u32) -> u32 {
    let i = RUNS.partition_point(|&(_, hi, _)| hi < c);
    match RUNS.get(i) {
        Some(&(lo, _, 0)) if lo <= c => {
            if (c - lo).is_multiple_of(2) {
                c + 1
            } else {
                c - 1
            }
        }
        Some(&(lo, _, delta)) if lo <= c => shift(c, delta),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn set(chars: &str) -> CharSet {
        CharSet::from_ranges(chars.chars().map(|c| (c as u32, c as u32)))
    }

    #[rstest]
    #[case('K', 'k' as u32)]
    #[case('k', 0x212A)]
    #[case('\u{212A}', 'K' as u32)]
    #[case('s', 0x17F)]
    #[case('\u{17F}', 'S' as u32)]
    #[case('S', 's' as u32)]
    #[case('a', 'A' as u32)]
    #[case('A', 'a' as u32)]
    #[case('0', '0' as u32)]
    #[case('\u{100}', 0x101)]
    #[case('\u{101}', 0x100)]
    fn simple_fold_follows_the_orbit(#[case] c: char, #[case] next: u32) {
        assert_eq!(simple_fold(c as u32), next);
    }

    #[rstest]
    #[case("k", "Kk\u{212A}")]
    #[case("s", "Ss\u{17F}")]
    #[case("\u{3C3}", "\u{3A3}\u{3C2}\u{3C3}")]
    #[case("1", "1")]
    #[case("\u{100}", "\u{100}\u{101}")]
    fn folding_adds_the_whole_orbit(#[case] chars: &str, #[case] folded: &str) {
        assert_eq!(set(chars).case_folded(), set(folded));
    }

    #[test]
    fn folding_a_range_is_folding_each_member() {
        let range = CharSet::from_ranges([(0x41, 0x2FF)]);
        let each = (0x41..=0x2FF).fold(CharSet::default(), |mut all, c| {
            all.union(&CharSet::single(c).case_folded());
            all
        });
        assert_eq!(range.case_folded(), each);
    }

    #[test]
    fn ranges_are_sorted_and_merged_in_any_order() {
        let set = CharSet::from_ranges([
            (10, 12),
            (1, 2),
            (14, 20),
            (3, 3),
            (13, 13),
            (30, 31),
            (0, 0),
        ]);
        assert_eq!(set.ranges(), &[(0, 3), (10, 20), (30, 31)]);
        let set = CharSet::from_ranges([(5, 9), (0, 100), (200, 200)]);
        assert_eq!(set.ranges(), &[(0, 100), (200, 200)]);
        let set = CharSet::from_ranges([(MAX_RUNE, MAX_RUNE), (0, MAX_RUNE - 1)]);
        assert_eq!(set.ranges(), &[(0, MAX_RUNE)]);
    }

    #[test]
    fn negation_and_surrogates() {
        let digits = CharSet::from_ranges([(0x30, 0x39)]);
        let others = digits.negated();
        assert_eq!(others.ranges(), &[(0, 0x2F), (0x3A, MAX_RUNE)]);
        assert!(!others.contains(0x35) && others.contains(0xD800));
        assert_eq!(others.negated(), digits);
        let scalars: Vec<_> = others.scalar_ranges().collect();
        assert_eq!(
            scalars,
            [('\0', '/'), (':', '\u{D7FF}'), ('\u{E000}', char::MAX)]
        );
        let surrogates = CharSet::from_ranges([(0xD800, 0xDFFF)]);
        assert_eq!(surrogates.scalar_ranges().count(), 0);
    }
}
