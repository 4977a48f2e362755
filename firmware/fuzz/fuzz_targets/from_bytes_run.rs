//! Any bytes through `Model::from_bytes`, and every accepted model through `run_multi`.
//! A blob only passes the CRC if the fuzzer fixes it up, so inputs whose CRC field is
//! wrong are resealed first: the checks behind the CRC get exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnblob_firmware::Model;

const CRC: core::ops::Range<usize> = 12..16;

fn reseal(data: &mut [u8]) {
    if data.len() < 36 {
        return;
    }
    let total = u32::from_le_bytes([data[16], data[17], data[18], data[19]]) as usize;
    let Some(blob) = data.get(..total).filter(|b| b.len() >= 36) else { return };
    let crc = crc_of(blob);
    data[CRC].copy_from_slice(&crc.to_le_bytes());
}

fn crc_of(blob: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in blob[..12].iter().chain(&blob[16..]) {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    reseal(&mut data);
    let Ok(model) = Model::from_bytes(&data) else { return };
    if model.arena_len() > 1 << 20 {
        return;
    }
    let inputs: Vec<Vec<f32>> = (0..model.input_count()).map(|i| vec![0.5; model.input_len(i)]).collect();
    let mut outputs: Vec<Vec<f32>> = (0..model.output_count()).map(|i| vec![0.0; model.output_len(i)]).collect();
    let mut arena = vec![0.0; model.arena_len()];
    let ins: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
    let mut outs: Vec<&mut [f32]> = outputs.iter_mut().map(|v| v.as_mut_slice()).collect();
    let _ = model.run_multi(&ins, &mut outs, &mut arena);
});
