//! The policy module without the padding the linker leaves in its code section.
//!
//! wasm-ld writes every relocated index (a call's function, a global, a memory offset) as a 5-byte
//! LEB128 so that it can patch it in place; `--compress-relocations` rewrites them at their real
//! length. It is what `kwctl annotate` does to the module too (walrus re-encodes the code
//! section), so the module `make annotated-policy.wasm` writes with either annotator is the module
//! `kwctl push` publishes, byte for byte in its code. wasm-ld refuses the flag when it writes debug
//! information, so builds with debug info (none of the module's profiles) keep the padding.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32");
    let debug_info = std::env::var("DEBUG").is_ok_and(|debug| debug != "false" && debug != "0");
    if wasm && !debug_info {
        println!("cargo:rustc-link-arg-cdylib=--compress-relocations");
    }
}
