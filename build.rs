//! Build script of the kernel binary (`kernel/Cargo.toml` points here).
//!
//! For the bare-metal target it links with `kernel/link.ld`, which places the image at
//! 4 MiB and emits the PVH entry note. Host builds (unit tests of the kernel's pure
//! modules) need nothing.

use std::env;

fn main() {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed={manifest}/link.ld");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{manifest}/link.ld");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=0x1000");
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    }
}
