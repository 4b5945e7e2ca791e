//! Eight bytes at a time, in one `u64` (read little-endian, so the first byte in memory is the
//! lowest): the scans that every request makes over many short strings, the payload's strings in
//! [`crate::skim`] and each `allowedImages` entry's first component in [`crate::allowlist`], test
//! eight bytes at once, as serde_json's own string scan does.

/// `0x01` in every byte.
pub const ONES: u64 = u64::MAX / 255;
/// `0x80` in every byte: the flag a test sets on the bytes it finds.
pub const HIGH: u64 = ONES << 7;

/// The bytes of `word` equal to `byte`, flagged by their high bit (Mycroft's test for a zero
/// byte, on `word` xor `byte`). The borrow of a zero byte may also flag a byte above it, never
/// one below: so the lowest flag is exact, and whether any byte below a given one is flagged is
/// exact too.
pub fn equal_bytes(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// The offset of the lowest flagged byte of `flags`, if any.
pub fn first_flagged(flags: u64) -> Option<usize> {
    (flags != 0).then(|| flags.trailing_zeros() as usize / 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_flag_is_the_first_equal_byte() {
        for byte in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = [byte.wrapping_add(1); 8];
                bytes[at] = byte;
                let word = u64::from_le_bytes(bytes);
                assert_eq!(
                    first_flagged(equal_bytes(word, byte)),
                    Some(at),
                    "{byte} at {at}"
                );
            }
            let none = u64::from_le_bytes([byte.wrapping_add(1); 8]);
            assert_eq!(first_flagged(equal_bytes(none, byte)), None, "{byte}");
        }
    }
}
