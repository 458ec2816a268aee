//! Spreadsheet exports (UI.md §1: "CSV et Excel"): the same rows as a `;`-separated CSV with a BOM, or as a minimal
//! XLSX workbook — one sheet, inline strings, numbers as written — in a ZIP without compression. Written here in a
//! few lines rather than with a crate: the files are small and the format needs nothing more.

/// A cell: text, or a number already written as a decimal literal with a dot (`120.000`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Number(String),
}

impl Cell {
    fn as_str(&self) -> &str {
        match self {
            Cell::Text(s) | Cell::Number(s) => s,
        }
    }
}

pub fn csv(rows: &[Vec<Cell>]) -> String {
    let mut out = String::from("\u{FEFF}");
    for r in rows {
        out.push_str(&domain::format::csv_line(&r.iter().map(Cell::as_str).collect::<Vec<_>>()));
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\t' || *c == '\n')
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The column letters of a zero-based index (0 → A, 26 → AA).
fn column(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

fn sheet_xml(rows: &[Vec<Cell>]) -> String {
    let mut x = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (r, row) in rows.iter().enumerate() {
        x.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, cell) in row.iter().enumerate() {
            let at = format!("{}{}", column(c), r + 1);
            match cell {
                Cell::Number(n) if !n.is_empty() => x.push_str(&format!(r#"<c r="{at}"><v>{}</v></c>"#, xml_escape(n))),
                other => x.push_str(&format!(
                    r#"<c r="{at}" t="inlineStr"><is><t xml:space="preserve">{}</t></is></c>"#,
                    xml_escape(other.as_str())
                )),
            }
        }
        x.push_str("</row>");
    }
    x.push_str("</sheetData></worksheet>");
    x
}

/// CRC-32 (IEEE), as ZIP wants it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A ZIP archive of stored (uncompressed) entries.
fn zip(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let (crc, size, offset) = (crc32(data), data.len() as u32, out.len() as u32);
        let header = |sig: u32, central_entry: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central_entry {
                h.extend(20u16.to_le_bytes()); // made by
            }
            h.extend(20u16.to_le_bytes()); // version needed
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(0u16.to_le_bytes()); // stored
            h.extend(0u32.to_le_bytes()); // time, date
            h.extend(crc.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central_entry {
                h.extend([0u8; 6]); // comment length, disk, internal attributes
                h.extend(0u32.to_le_bytes()); // external attributes
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend(data);
        central.extend(header(0x0201_4b50, true));
    }
    let (start, len, n) = (out.len() as u32, central.len() as u32, entries.len() as u16);
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]); // disk numbers
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend(len.to_le_bytes());
    out.extend(start.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A one-sheet workbook.
pub fn xlsx(sheet: &str, rows: &[Vec<Cell>]) -> Vec<u8> {
    let ns = "http://schemas.openxmlformats.org";
    let entries = [
        (
            "[Content_Types].xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="{ns}/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#
            ),
        ),
        (
            "_rels/.rels",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{ns}/spreadsheetml/2006/main" xmlns:r="{ns}/officeDocument/2006/relationships"><sheets><sheet name="{}" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
                xml_escape(&sheet.chars().take(31).collect::<String>())
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#
            ),
        ),
        ("xl/worksheets/sheet1.xml", sheet_xml(rows)),
    ];
    zip(&entries.iter().map(|(n, s)| (*n, s.clone().into_bytes())).collect::<Vec<_>>())
}

pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back the stored entries of our ZIP: (name, data), checking each CRC.
    fn unzip(z: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut i = 0;
        while z[i..].starts_with(&0x0403_4b50u32.to_le_bytes()) {
            let u32_at = |k: usize| u32::from_le_bytes([z[k], z[k + 1], z[k + 2], z[k + 3]]);
            let u16_at = |k: usize| u16::from_le_bytes([z[k], z[k + 1]]) as usize;
            let (crc, size, name_len) = (u32_at(i + 14), u32_at(i + 18) as usize, u16_at(i + 26));
            let name = String::from_utf8(z[i + 30..i + 30 + name_len].to_vec()).unwrap();
            let data = z[i + 30 + name_len..i + 30 + name_len + size].to_vec();
            assert_eq!(crc32(&data), crc, "{name}");
            out.push((name, data));
            i += 30 + name_len + size;
        }
        // The end record points at the central directory, whose entries name the same files at their offsets.
        let end = z.len() - 22;
        assert!(z[end..].starts_with(&0x0605_4b50u32.to_le_bytes()));
        let u32_at = |k: usize| u32::from_le_bytes([z[k], z[k + 1], z[k + 2], z[k + 3]]) as usize;
        let u16_at = |k: usize| u16::from_le_bytes([z[k], z[k + 1]]) as usize;
        assert_eq!((u16_at(end + 10), u32_at(end + 16)), (out.len(), i));
        let mut k = i;
        for (name, _) in &out {
            assert!(z[k..].starts_with(&0x0201_4b50u32.to_le_bytes()), "central entry of {name}");
            let (n, extra, comment) = (u16_at(k + 28), u16_at(k + 30), u16_at(k + 32));
            assert_eq!(&z[k + 46..k + 46 + n], name.as_bytes());
            let local = u32_at(k + 42);
            assert_eq!(&z[local + 30..local + 30 + n], name.as_bytes());
            k += 46 + n + extra + comment;
        }
        assert_eq!(k, end);
        out
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_workbook_holds_its_five_parts_and_the_cells() {
        let rows = vec![
            vec![Cell::Text("lot".into()), Cell::Text("quantité".into())],
            vec![Cell::Text("L250314-001 & <co>".into()), Cell::Number("120.000".into())],
        ];
        let entries = unzip(&xlsx("Rappel", &rows));
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "[Content_Types].xml",
                "_rels/.rels",
                "xl/workbook.xml",
                "xl/_rels/workbook.xml.rels",
                "xl/worksheets/sheet1.xml"
            ]
        );
        let sheet = String::from_utf8(entries[4].1.clone()).unwrap();
        assert!(sheet.contains(r#"<c r="B2"><v>120.000</v></c>"#), "{sheet}");
        assert!(sheet.contains("L250314-001 &amp; &lt;co&gt;") && sheet.contains("quantité"));
        assert_eq!((column(0), column(25), column(26), column(27)), ("A".into(), "Z".into(), "AA".into(), "AB".into()));
        assert_eq!(csv(&rows), "\u{FEFF}lot;quantité\r\nL250314-001 & <co>;120.000\r\n");
    }
}
