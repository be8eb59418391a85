#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mfakey::fuzzing::journal(data));
