//! Helpers shared by the generated-corpus tests. Each test file uses part of them.
#![allow(dead_code)]

/// A small deterministic generator (xorshift64*), so that CI sees the same corpus every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// Mostly a valid piece, sometimes a hostile one.
    pub fn piece<'a>(&mut self, valid: &[&'a str], hostile: &[&'a str]) -> &'a str {
        if self.chance(90) {
            self.pick(valid)
        } else {
            self.pick(hostile)
        }
    }
}
