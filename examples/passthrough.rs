//! The floor for any stdio proxy: a process that starts the server and copies bytes both
//! ways, reading and writing as intercept does (a thread per direction, one write per
//! read, a yield before each read) but parsing and deciding nothing.
//! `benches/proxy.js` runs it with `FLOOR=1`, to show what a separate process costs on
//! its own: `passthrough [ignored flags] -- CMD ARGS...`
use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dash = args.iter().position(|a| a == "--").expect("-- CMD ARGS");
    let mut child = Command::new(&args[dash + 1])
        .args(&args[dash + 2..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let server_in = child.stdin.take().expect("piped");
    let server_out = child.stdout.take().expect("piped");
    let back = std::thread::spawn(move || copy(server_out, std::io::stdout()));
    copy(std::io::stdin(), server_in);
    back.join().expect("the copying thread ends");
    let _ = child.wait();
}

fn copy(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        std::thread::yield_now();
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|_| to.flush()).is_err() {
                    return;
                }
            }
        }
    }
}
