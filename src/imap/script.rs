//! A scripted server for unit tests of the IMAP layer: replies come from a fixed text,
//! and what the client sends is kept for the test to check.

use std::{
    cell::RefCell,
    io::{Cursor, Read, Write},
    rc::Rc,
};

/// The stream half the client talks to.
pub struct Script {
    input: Cursor<Vec<u8>>,
    written: Rc<RefCell<Vec<u8>>>,
}

impl Script {
    /// A server that answers with `replies`, and the handle to what the client sent.
    pub fn new(replies: &str) -> (Script, Rc<RefCell<Vec<u8>>>) {
        let written = Rc::new(RefCell::new(Vec::new()));
        let script = Script {
            input: Cursor::new(replies.as_bytes().to_vec()),
            written: Rc::clone(&written),
        };
        (script, written)
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
