//! Writes an rpath to the CPU libtorch that `scripts/setup.sh` installed, so the binary, the tests and
//! the benchmarks find `libtorch_cpu.so` and the CUDA runtime stubs it links against at run time,
//! without `LD_LIBRARY_PATH`.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let site = format!("{libtorch}/..");
        for dir in [
            format!("{libtorch}/lib"),
            format!("{site}/nvidia/cuda_runtime/lib"),
            format!("{site}/nvidia/cuda_cupti/lib"),
        ] {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
}
