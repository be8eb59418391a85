#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mfakey::fuzzing::base32_seed(data));
