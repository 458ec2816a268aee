//! Printable documents (DOMAIN.md §18): the invoice, the credit note, the delivery note and the purchase order share
//! one A4 layout ([`Document`]); the lot label has its own 100 × 50 mm page ([`Label`]). The caller fills them with
//! text already formatted in French (amounts, dates, quantities come from `domain`'s formatters), so this crate holds
//! layout only. Fonts are embedded (typst-assets) and nothing is ever fetched: a PDF renders offline.

use std::sync::LazyLock;

use serde::Serialize;
use typst::foundations::{Dict, IntoValue};
use typst_as_lib::TypstEngine;
use typst_layout::PagedDocument;

/// One identity block: seller, client or supplier.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Party {
    /// "Vendeur", "Client", "Fournisseur", printed small above the name.
    pub role: String,
    pub name: String,
    /// Address and identifiers, one per line ("NIF : 0001…").
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub header: String,
    /// Relative width (fractions of the line).
    pub width: u8,
    /// Numbers are right-aligned.
    pub right: bool,
}

impl Column {
    pub fn text(header: &str, width: u8) -> Column {
        Column { header: header.into(), width, right: false }
    }
    pub fn number(header: &str, width: u8) -> Column {
        Column { header: header.into(), width, right: true }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub cells: Vec<String>,
    /// A second, indented line under the row (the lots shipped for a delivery-note line).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Total {
    pub label: String,
    pub value: String,
    pub strong: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Qr {
    /// The QR code as SVG (drawn by the caller from the signed payload).
    pub svg: String,
    /// Printed under the code: the document reference.
    pub caption: String,
}

/// Invoice, credit note, delivery note or purchase order.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Document {
    /// PDF title metadata, e.g. "Facture F-2025-00007".
    pub title: String,
    /// The large heading: "FACTURE N° F-2025-00007".
    pub heading: String,
    pub seller: Party,
    pub counterpart: Party,
    /// (label, value) pairs under the heading: date, due date, invoice reference…
    pub facts: Vec<(String, String)>,
    pub table: Table,
    /// One row per TVA rate: (rate, base HT, TVA).
    pub vat: Vec<[String; 3]>,
    pub totals: Vec<Total>,
    /// "Arrêtée la présente facture à la somme de : …".
    pub words: Option<String>,
    /// Short paragraphs after the totals (payment method, conditions).
    pub notes: Vec<String>,
    pub qr: Option<Qr>,
    /// Empty boxes to sign in ("Reçu par", "Signature", "Date").
    pub boxes: Vec<String>,
    /// Small print at the bottom of every page (RIB, footer text).
    pub footer: String,
    /// Demo data: a "DÉMO" watermark across every page.
    pub demo: bool,
    /// The company logo (PNG or JPEG bytes), above the seller's name.
    #[serde(skip)]
    pub logo: Option<Vec<u8>>,
}

/// One lot label, 100 × 50 mm.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Label {
    pub product: String,
    pub code: String,
    pub lot: String,
    /// "À consommer jusqu'au 12/04/2025" or "Sans DLC".
    pub dlc: String,
    /// Manufacture date, storage, net quantity: one per line.
    pub lines: Vec<String>,
    /// QR code (SVG) of `MCG:LOT:{lot}:{mac}`.
    pub qr: String,
}

/// Labels printed together, one per page (a lot, or every lot of a reception).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Labels {
    pub title: String,
    pub labels: Vec<Label>,
    pub demo: bool,
}

/// A landscape table report (accounting exports): one row per line, the header repeated on every page.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub title: String,
    /// The company's name, above the title.
    pub company: String,
    /// The period, e.g. "Du 01/03/2025 au 31/03/2025".
    pub subtitle: String,
    /// Print date, in the footer.
    pub printed: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
    pub demo: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("le document n'a pas pu être mis en page : {0}")]
    Layout(String),
    #[error("le PDF n'a pas pu être écrit : {0}")]
    Pdf(String),
}

const DOCUMENT: &str = "document.typ";
const LABEL: &str = "label.typ";
const REPORT: &str = "report.typ";

/// The engine is built once: parsing the templates and loading the fonts is the slow part.
static ENGINE: LazyLock<TypstEngine> = LazyLock::new(|| {
    TypstEngine::builder()
        .fonts(typst_assets::fonts())
        .with_static_source_file_resolver([
            ("common.typ", include_str!("../templates/common.typ")),
            (DOCUMENT, include_str!("../templates/document.typ")),
            (LABEL, include_str!("../templates/label.typ")),
            (REPORT, include_str!("../templates/report.typ")),
        ])
        .build()
});

fn render(template: &str, data: &impl Serialize, logo: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let json = serde_json::to_string(data).map_err(|e| Error::Layout(e.to_string()))?;
    let mut inputs = Dict::new();
    inputs.insert("data".into(), json.into_value());
    if let Some(bytes) = logo {
        inputs.insert("logo".into(), typst::foundations::Bytes::new(bytes.to_vec()).into_value());
    }
    let doc: PagedDocument =
        ENGINE.compile_with_input(template, inputs).output.map_err(|e| Error::Layout(e.to_string()))?;
    typst_pdf::pdf(&doc, &typst_pdf::PdfOptions::default())
        .map_err(|e| Error::Pdf(e.iter().map(|d| d.message.to_string()).collect::<Vec<_>>().join("; ")))
}

/// Renders an A4 document to PDF. CPU-bound: call it from `spawn_blocking`.
pub fn document_pdf(d: &Document) -> Result<Vec<u8>, Error> {
    render(DOCUMENT, d, d.logo.as_deref())
}

/// Renders lot labels to PDF, one per page. CPU-bound: call it from `spawn_blocking`.
pub fn labels_pdf(l: &Labels) -> Result<Vec<u8>, Error> {
    render(LABEL, l, None)
}

/// Renders a report to PDF (landscape A4). CPU-bound: call it from `spawn_blocking`.
pub fn report_pdf(r: &Report) -> Result<Vec<u8>, Error> {
    render(REPORT, r, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(demo: bool) -> Document {
        Document {
            title: "Facture F-2025-00007".into(),
            heading: "FACTURE N° F-2025-00007".into(),
            seller: Party { role: "Vendeur".into(), name: "Fromagerie Test SARL".into(), lines: vec!["NIF : 1".into()] },
            counterpart: Party { role: "Client".into(), name: "Supérette Él-Baraka".into(), lines: vec![] },
            facts: vec![("Date".into(), "14/03/2025".into())],
            table: Table {
                columns: vec![Column::text("Désignation", 4), Column::number("Montant HT", 2)],
                rows: vec![Row { cells: vec!["Gouda 400 g".into(), "19 700,00".into()], detail: Some("Lot L1".into()) }],
            },
            vat: vec![["19 %".into(), "19 700,00".into(), "3 743,00".into()]],
            totals: vec![Total { label: "NET À PAYER".into(), value: "23 678,00".into(), strong: true }],
            words: Some("Arrêtée la présente facture à la somme de : Vingt-trois mille…".into()),
            notes: vec!["Mode de règlement : Espèces".into()],
            qr: Some(Qr { svg: r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5" height="5"/></svg>"#.into(), caption: "LIV-2025-00001".into() }),
            boxes: vec!["Reçu par".into()],
            footer: "RIB : 000".into(),
            demo,
            logo: None,
        }
    }

    /// The text a reader (and a tax inspector's tool) extracts from the PDF: poppler's pdftotext.
    pub(crate) fn pdf_text(pdf: &[u8]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("pdftotext")
            .args(["-raw", "-", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("pdftotext (poppler-utils) is installed");
        child.stdin.take().unwrap().write_all(pdf).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    /// Images drawn in the PDF (their soft masks aside), as poppler's pdfimages lists them.
    pub(crate) fn pdf_images(pdf: &[u8], tag: &str) -> usize {
        let path = std::env::temp_dir().join(format!("manchengo-{tag}-{}.pdf", std::process::id()));
        std::fs::write(&path, pdf).unwrap();
        let out = std::process::Command::new("pdfimages").arg("-list").arg(&path).output().expect("pdfimages");
        let _ = std::fs::remove_file(&path);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(2)
            .filter(|l| l.split_whitespace().nth(2) == Some("image"))
            .count()
    }

    #[test]
    fn a_document_prints_its_blocks_page_numbers_and_watermark() {
        let pdf = document_pdf(&sample(true)).expect("rendered");
        assert!(pdf.starts_with(b"%PDF-"), "a PDF file");
        if std::env::var("DOCUMENTS_SAMPLE").is_ok() {
            std::fs::write(std::env::temp_dir().join("manchengo-sample.pdf"), &pdf).unwrap();
        }
        let text = pdf_text(&pdf);
        for expected in [
            "FACTURE N° F-2025-00007",
            "Fromagerie Test SARL",
            "Supérette Él-Baraka",
            "Désignation",
            "Gouda 400 g",
            "Lot L1",
            "19 %",
            "3 743,00",
            "NET À PAYER",
            "23 678,00",
            "Arrêtée la présente facture à la somme de",
            "Mode de règlement : Espèces",
            "Reçu par",
            "LIV-2025-00001",
            "RIB : 000",
            "Page 1 / 1",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        // The watermark is drawn rotated: its letters come out of the PDF on separate lines.
        let joined = |t: &str| t.split_whitespace().collect::<String>();
        assert!(joined(&text).contains("DÉMO"), "watermark on demo data");
        let plain = pdf_text(&document_pdf(&sample(false)).unwrap());
        assert!(!joined(&plain).contains("DÉMO"), "no watermark on real data");
    }

    #[test]
    fn the_logo_is_drawn_above_the_seller() {
        // A 1 × 1 PNG.
        let png: Vec<u8> = vec![
            137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31,
            21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 218, 99, 100, 248, 207, 80, 15, 0, 3, 134, 1, 128, 90, 52,
            125, 107, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
        ];
        let images = |pdf: &[u8]| pdf_images(pdf, "logo");
        let without = document_pdf(&sample(false)).unwrap();
        let with = document_pdf(&Document { logo: Some(png), ..sample(false) }).unwrap();
        assert_eq!(images(&without), 0, "the QR is vector, nothing else is an image");
        assert_eq!(images(&with), 1);
    }

    #[test]
    fn a_long_document_numbers_every_page() {
        let mut d = sample(false);
        let row = d.table.rows[0].clone();
        d.table.rows = vec![row; 80];
        let text = pdf_text(&document_pdf(&d).unwrap());
        let total: usize = text
            .split("Page 1 / ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("page 1 of N");
        assert!(total >= 2, "80 lines do not fit on one page");
        for n in 2..=total {
            assert!(text.contains(&format!("Page {n} / {total}")), "page {n} numbered");
        }
        // The column headers repeat on the pages the lines continue on.
        assert!(text.matches("Désignation").count() >= 2, "{text}");
    }

    #[test]
    fn a_report_repeats_its_header_on_every_page() {
        let r = Report {
            title: "Journal des ventes".into(),
            company: "Fromagerie Test SARL".into(),
            subtitle: "Du 01/03/2025 au 31/03/2025".into(),
            printed: "04/12/2026".into(),
            columns: vec![Column::text("Numéro", 2), Column::number("Net", 1)],
            rows: (1..=120).map(|i| vec![format!("F-2025-{i:05}"), format!("{i},00")]).collect(),
            demo: false,
        };
        let text = pdf_text(&report_pdf(&r).unwrap());
        assert!(text.contains("Journal des ventes") && text.contains("Du 01/03/2025 au 31/03/2025"));
        assert!(text.contains("F-2025-00001") && text.contains("F-2025-00120 120,00"), "{text}");
        let pages = text.matches("Page ").count();
        assert!(pages >= 2, "120 rows take more than a page");
        assert_eq!(text.matches("Numéro Net").count(), pages, "the header on each page");
        let empty = Report { rows: Vec::new(), ..r };
        assert!(pdf_text(&report_pdf(&empty).unwrap()).contains("Aucune ligne sur la période."));
    }

    #[test]
    fn labels_render_one_per_page() {
        let l = Label {
            product: "Gouda 400 g".into(),
            code: "PF-GOUDA-400".into(),
            lot: "L250314-002".into(),
            dlc: "Sans DLC".into(),
            lines: vec!["Fabriqué le 14/03/2025".into()],
            qr: r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5" height="5"/></svg>"#
                .into(),
        };
        let second = Label { lot: "L250314-003".into(), dlc: "À consommer jusqu'au 12/04/2025".into(), ..l.clone() };
        let labels = Labels { title: "REC-2025-00001".into(), labels: vec![l, second], demo: false };
        let pdf = labels_pdf(&labels).expect("rendered");
        let text = pdf_text(&pdf);
        for expected in ["Gouda 400 g", "PF-GOUDA-400", "L250314-002", "Sans DLC", "Fabriqué le 14/03/2025"] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        // One label per page.
        let pages: Vec<&str> = text.split('\u{c}').filter(|p| !p.trim().is_empty()).collect();
        assert_eq!(pages.len(), 2, "{text}");
        assert!(pages[1].contains("L250314-003") && pages[1].contains("12/04/2025"));
        // 100 × 50 mm: 283.46 × 141.73 pt.
        let info = String::from_utf8_lossy(&pdf);
        assert!(info.contains("283.46") && info.contains("141.73"), "label page size");
    }
}
