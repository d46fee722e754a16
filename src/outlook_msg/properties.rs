//! The MS-OXMSG property layer over a compound file: property streams, the fixed-size
//! property table and text in the message's code page, read within a byte budget.
//!
//! A `.msg` file is a CFB (compound file) whose storages hold MAPI properties: each
//! variable-size property is a stream `__substg1.0_PPPPTTTT` (property id, property type),
//! and the fixed-size ones (integers, times, booleans) are 16-byte entries of the storage's
//! `__properties_version1.0` stream, after a header whose size depends on the storage.

use std::{
    collections::HashMap,
    io::{Cursor, Read},
    path::{Path, PathBuf},
};

use cfb::CompoundFile;
use encoding_rs::Encoding;

use super::MsgError;

/// `PT_LONG`: a 32-bit integer in the fixed-size table.
pub(super) const PT_LONG: u16 = 0x0003;
/// `PT_SYSTIME`: a FILETIME in the fixed-size table.
pub(super) const PT_SYSTIME: u16 = 0x0040;
/// `PT_UNICODE`: a UTF-16LE string stream.
const PT_UNICODE: u16 = 0x001F;
/// `PT_STRING8`: an 8-bit string stream in the message's code page.
const PT_STRING8: u16 = 0x001E;
/// `PT_BINARY`: a byte stream.
pub(super) const PT_BINARY: u16 = 0x0102;

/// `PR_MESSAGE_CODEPAGE`: the code page of the message's 8-bit strings.
const PR_MESSAGE_CODEPAGE: u16 = 0x3FFD;
/// `PR_INTERNET_CPID`: the code page the message had on the wire (and of its HTML body).
pub(super) const PR_INTERNET_CPID: u16 = 0x3FDE;
/// `PR_MESSAGE_LOCALE_ID`: the LCID of the Outlook that wrote the message.
const PR_MESSAGE_LOCALE_ID: u16 = 0x3FF1;

/// The name of a storage's fixed-size property table.
const PROPERTIES: &str = "__properties_version1.0";
/// Each entry of the fixed-size table: tag, flags, 8 bytes of value (MS-OXMSG 2.4.2).
const ENTRY_LEN: usize = 16;

/// Which storage a property table belongs to: its header size differs (MS-OXMSG 2.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The root of the file: 32-byte header.
    TopLevel,
    /// A message attached by method 5 (`__substg1.0_3701000D`): 24-byte header.
    Embedded,
    /// A recipient or attachment storage: 8-byte header.
    Child,
}

impl Kind {
    fn header_len(self) -> usize {
        match self {
            Kind::TopLevel => 32,
            Kind::Embedded => 24,
            Kind::Child => 8,
        }
    }
}

/// A storage's fixed-size properties and the code page its 8-bit strings are in.
#[derive(Debug)]
pub(super) struct Storage {
    /// Its path inside the compound file.
    pub path: PathBuf,
    /// The 8-byte value of each fixed-size property, by tag (`id << 16 | type`).
    fixed: HashMap<u32, [u8; 8]>,
    /// The message's code page; recipients and attachments inherit their message's.
    code_page: Option<&'static Encoding>,
}

impl Storage {
    /// A fixed-size 32-bit integer property.
    pub fn long(&self, id: u16) -> Option<u32> {
        let value = self.fixed.get(&tag(id, PT_LONG))?;
        let [a, b, c, d, ..] = *value;
        Some(u32::from_le_bytes([a, b, c, d]))
    }

    /// A fixed-size FILETIME property (100 ns ticks since 1601-01-01 UTC).
    pub fn systime(&self, id: u16) -> Option<u64> {
        self.fixed
            .get(&tag(id, PT_SYSTIME))
            .map(|v| u64::from_le_bytes(*v))
    }

    /// The code page this storage's 8-bit strings are written in, if the message says.
    pub fn code_page(&self) -> Option<&'static Encoding> {
        self.code_page
    }
}

fn tag(id: u16, kind: u16) -> u32 {
    u32::from(id) << 16 | u32::from(kind)
}

/// A compound file opened for reading properties, with what is left of its byte budget.
pub(super) struct Reader<'a> {
    file: CompoundFile<Cursor<&'a [u8]>>,
    /// Bytes still allowed to be read out of streams: the input's size to start with, so
    /// a file whose directory points many streams at the same sectors cannot make the
    /// reader decode more than it was given.
    budget: usize,
}

impl<'a> Reader<'a> {
    /// Open `bytes` as a compound file; the CFB crate validates its structure.
    pub fn open(bytes: &'a [u8]) -> Result<Self, MsgError> {
        let file = CompoundFile::open(Cursor::new(bytes))
            .map_err(|e| MsgError::NotCompoundFile(e.to_string()))?;
        Ok(Self {
            file,
            budget: bytes.len(),
        })
    }

    /// Load the fixed-size property table of the storage at `path`. Message storages
    /// must have one (without it the file is some other compound document, such as a
    /// Word file named `.msg`); a recipient or attachment without one has no fixed-size
    /// properties. `inherited` is the code page of the message a child storage is in.
    pub fn storage(
        &mut self,
        path: PathBuf,
        kind: Kind,
        inherited: Option<&'static Encoding>,
    ) -> Result<Storage, MsgError> {
        let table_path = path.join(PROPERTIES);
        let table = match self.stream(&table_path)? {
            Some(table) => table,
            None if kind == Kind::Child => Vec::new(),
            None => return Err(MsgError::NoPropertyTable(display(&path))),
        };
        let entries = if table.is_empty() && kind == Kind::Child {
            &[][..]
        } else {
            table
                .get(kind.header_len()..)
                .filter(|e| e.len() % ENTRY_LEN == 0)
                .ok_or_else(|| MsgError::BadPropertyTable {
                    path: display(&table_path),
                    len: table.len(),
                    header: kind.header_len(),
                })?
        };
        let mut fixed = HashMap::new();
        for entry in entries.chunks_exact(ENTRY_LEN) {
            // tag (4 bytes), flags (4), value (8)
            if let [t0, t1, t2, t3, _, _, _, _, value @ ..] = entry
                && let Ok(value) = <[u8; 8]>::try_from(value)
            {
                fixed.insert(u32::from_le_bytes([*t0, *t1, *t2, *t3]), value);
            }
        }
        let mut storage = Storage {
            path,
            fixed,
            code_page: inherited,
        };
        if kind != Kind::Child {
            // 8-bit strings are in the writer's ANSI code page. Outlook often leaves
            // PR_MESSAGE_CODEPAGE out; its locale then says which (1041, Japanese: 932).
            // PR_INTERNET_CPID is not it: a Japanese Outlook writes Shift_JIS strings into
            // a message whose wire charset was ISO-2022-JP (50220).
            storage.code_page = storage
                .long(PR_MESSAGE_CODEPAGE)
                .and_then(encoding_for_code_page)
                .or_else(|| {
                    storage
                        .long(PR_MESSAGE_LOCALE_ID)
                        .and_then(ansi_code_page)
                        .and_then(encoding_for_code_page)
                })
                .or(inherited);
        }
        Ok(storage)
    }

    /// The sub-storages of `path` named `prefix` + 8 hex digits (recipients, attachments),
    /// in name order, which is the order Outlook numbered them; at most `limit`.
    pub fn children(
        &self,
        path: &Path,
        prefix: &str,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<PathBuf>, MsgError> {
        let entries = self
            .file
            .read_storage(path)
            .map_err(|source| MsgError::Stream {
                path: display(path),
                source,
            })?;
        let mut names = Vec::new();
        for entry in entries {
            let name = entry.name();
            let numbered = name
                .strip_prefix(prefix)
                .is_some_and(|n| n.len() == 8 && n.bytes().all(|b| b.is_ascii_hexdigit()));
            if entry.is_storage() && numbered {
                if names.len() == limit {
                    return Err(MsgError::TooMany { what, limit });
                }
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names.into_iter().map(|n| path.join(n)).collect())
    }

    /// Whether `path` is a storage (an embedded message's is `__substg1.0_3701000D`).
    pub fn is_storage(&self, path: &Path) -> bool {
        self.file.is_storage(path)
    }

    /// The bytes of the stream at `path`, `None` when there is no such stream.
    pub fn stream(&mut self, path: &Path) -> Result<Option<Vec<u8>>, MsgError> {
        if !self.file.is_stream(path) {
            return Ok(None);
        }
        let stream = self
            .file
            .open_stream(path)
            .map_err(|source| MsgError::Stream {
                path: display(path),
                source,
            })?;
        let mut bytes = Vec::new();
        // One byte over the budget tells "too large" from "exactly the rest".
        let cap = u64::try_from(self.budget)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        stream
            .take(cap)
            .read_to_end(&mut bytes)
            .map_err(|source| MsgError::Stream {
                path: display(path),
                source,
            })?;
        self.budget = self
            .budget
            .checked_sub(bytes.len())
            .ok_or(MsgError::TooLarge)?;
        Ok(Some(bytes))
    }

    /// A binary property (`PPPP0102`) of `storage`.
    pub fn binary(&mut self, storage: &Storage, id: u16) -> Result<Option<Vec<u8>>, MsgError> {
        self.stream(&substg(&storage.path, id, PT_BINARY))
    }

    /// A string property of `storage`: the UTF-16LE (`001F`) stream, else the 8-bit
    /// (`001E`) one in the storage's code page; trailing NULs removed.
    pub fn string(&mut self, storage: &Storage, id: u16) -> Result<Option<String>, MsgError> {
        if let Some(bytes) = self.stream(&substg(&storage.path, id, PT_UNICODE))? {
            let (text, _) = encoding_rs::UTF_16LE.decode_without_bom_handling(&bytes);
            return Ok(Some(text.trim_end_matches('\0').to_owned()));
        }
        Ok(self
            .stream(&substg(&storage.path, id, PT_STRING8))?
            .map(|bytes| decode_8bit(&bytes, storage.code_page)))
    }
}

/// The path of a property stream of the storage at `path`.
pub(super) fn substg(path: &Path, id: u16, kind: u16) -> PathBuf {
    path.join(format!("__substg1.0_{id:04X}{kind:04X}"))
}

/// 8-bit text in `code_page`; without one, UTF-8 when valid, else windows-1252, as the
/// MIME walk reads undeclared 8-bit text.
pub(super) fn decode_8bit(bytes: &[u8], code_page: Option<&'static Encoding>) -> String {
    let text = match code_page {
        Some(encoding) => encoding.decode_without_bom_handling(bytes).0,
        None => crate::mime::headers::bytes_to_text(bytes),
    };
    text.trim_end_matches('\0').to_owned()
}

/// The encoding of a Windows code page number, for the code pages mail is written in.
/// Unknown ones give `None`, so the text is read as UTF-8 or windows-1252.
pub(super) fn encoding_for_code_page(code_page: u32) -> Option<&'static Encoding> {
    use encoding_rs as e;
    Some(match code_page {
        // US-ASCII and ISO-8859-1 are read as windows-1252, as WHATWG (and the walk) do.
        1252 | 20127 | 28591 => e::WINDOWS_1252,
        1250 => e::WINDOWS_1250,
        1251 => e::WINDOWS_1251,
        1253 => e::WINDOWS_1253,
        1254 | 28599 => e::WINDOWS_1254,
        1255 => e::WINDOWS_1255,
        1256 => e::WINDOWS_1256,
        1257 => e::WINDOWS_1257,
        1258 => e::WINDOWS_1258,
        874 => e::WINDOWS_874,
        866 => e::IBM866,
        932 => e::SHIFT_JIS,
        936 => e::GBK,
        949 => e::EUC_KR,
        950 => e::BIG5,
        10000 => e::MACINTOSH,
        20866 => e::KOI8_R,
        21866 => e::KOI8_U,
        28592 => e::ISO_8859_2,
        28593 => e::ISO_8859_3,
        28594 => e::ISO_8859_4,
        28595 => e::ISO_8859_5,
        28596 => e::ISO_8859_6,
        28597 => e::ISO_8859_7,
        28598 => e::ISO_8859_8,
        28603 => e::ISO_8859_13,
        28605 => e::ISO_8859_15,
        50220..=50222 => e::ISO_2022_JP,
        51932 => e::EUC_JP,
        54936 => e::GB18030,
        65001 => e::UTF_8,
        _ => return None,
    })
}

/// The Windows ANSI code page of a locale (LCID), by its primary language; `None` for
/// the languages written in windows-1252 or with no ANSI code page, so their text is
/// read as UTF-8 when valid, else windows-1252.
pub(super) fn ansi_code_page(lcid: u32) -> Option<u32> {
    let primary = lcid & 0x3FF;
    Some(match primary {
        0x11 => 932,
        // Chinese: Taiwan, Hong Kong and Macao write Big5; China and Singapore GBK.
        0x04 if matches!(lcid & 0xFFFF, 0x0404 | 0x0C04 | 0x1404) => 950,
        0x04 => 936,
        0x12 => 949,
        0x1E => 874,
        0x19 | 0x22 | 0x23 | 0x02 | 0x2F | 0x3F | 0x44 | 0x50 => 1251,
        // Serbo-Croatian: Latin (Croatian, Bosnian, Serbian Latin) or Cyrillic.
        0x1A if matches!(lcid & 0xFFFF, 0x0C1A | 0x1C1A | 0x201A) => 1251,
        0x05 | 0x0E | 0x15 | 0x18 | 0x1A | 0x1B | 0x1C | 0x24 => 1250,
        0x08 => 1253,
        0x1F | 0x2C | 0x43 => 1254,
        0x0D => 1255,
        0x01 | 0x29 | 0x20 => 1256,
        0x25..=0x27 => 1257,
        0x2A => 1258,
        _ => return None,
    })
}

/// A path for error messages.
pub(super) fn display(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_pages_map_to_their_encodings() {
        assert_eq!(
            encoding_for_code_page(1252),
            Some(encoding_rs::WINDOWS_1252)
        );
        assert_eq!(encoding_for_code_page(65001), Some(encoding_rs::UTF_8));
        assert_eq!(encoding_for_code_page(932), Some(encoding_rs::SHIFT_JIS));
        assert_eq!(encoding_for_code_page(12345), None);
    }

    #[test]
    fn locales_give_their_ansi_code_page() {
        assert_eq!(ansi_code_page(1041), Some(932));
        assert_eq!(ansi_code_page(0x0804), Some(936));
        assert_eq!(ansi_code_page(0x0404), Some(950));
        assert_eq!(ansi_code_page(1049), Some(1251));
        assert_eq!(ansi_code_page(1033), None);
    }

    #[test]
    fn eight_bit_text_uses_the_code_page_else_utf8_or_1252() {
        assert_eq!(
            decode_8bit(b"\xcf\xf0\xe8\0", encoding_for_code_page(1251)),
            "При"
        );
        assert_eq!(decode_8bit(b"caf\xe9\0\0", None), "café");
        assert_eq!(decode_8bit("café".as_bytes(), None), "café");
    }

    #[test]
    fn property_stream_names_are_upper_case_hex() {
        assert_eq!(
            substg(Path::new("/"), 0x0037, 0x001F),
            Path::new("/__substg1.0_0037001F")
        );
    }
}
