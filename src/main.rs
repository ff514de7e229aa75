//! The `movie-queue` command-line tool (being built; see issue "The movie-queue command-line tool").

fn main() -> std::process::ExitCode {
    eprintln!("movie-queue: the command-line tool is not built yet; the library `movie_queue` is usable");
    std::process::ExitCode::from(1)
}
