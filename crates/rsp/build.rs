//! Link options of the `rsp` executable.
//!
//! On GNU/Linux the executable's relative relocations are packed (`-z pack-relative-relocs`, DT_RELR):
//! a position-independent executable keeps its address randomisation, but the ~1 MB table of 24-byte
//! relocation records that the loader reads (and so keeps resident) at every start shrinks to a bitmap
//! of a few kilobytes. Idle memory is one of the platform's measured targets (BENCHMARKS.md). It needs
//! binutils 2.38 and glibc 2.36 (Debian 12, the Dockerfile's builder and runtime images).

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
