//! Links the whole engine (every op) into one bare-metal function, to measure code size:
//! `cargo build --profile release-size --target thumbv7em-none-eabihf` in this folder
//! then `size -A` on the result (see docs/FIRMWARE.md). On the host it is an ordinary program.
#![cfg_attr(target_os = "none", no_std, no_main)]

use nnblob_firmware::Model;

/// Loads a blob and runs it; the entry point that keeps every kernel alive.
#[no_mangle]
pub fn nnblob_probe(blob: &[u8], input: &[f32], output: &mut [f32], arena: &mut [f32]) -> u32 {
    match Model::from_bytes(blob).and_then(|m| m.run(input, output, arena)) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(not(target_os = "none"))]
fn main() {
    let r = nnblob_probe(&[], &[], &mut [], &mut []);
    println!("probe on an empty blob: {r}");
}
