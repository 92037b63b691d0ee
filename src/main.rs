fn main() -> std::process::ExitCode {
    trtforge::cli::main()
}
