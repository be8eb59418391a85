fn main() -> std::process::ExitCode {
    mfakey::cli::run()
}
