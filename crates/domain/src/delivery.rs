//! Deliveries (DOMAIN.md §12): the BL state machine, the quantities a BL may take, the proof of delivery, and the
//! signed QR payloads of BLs and lot labels (§12.2) checked in constant time.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::rejection::Rejection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlStatus {
    Pending,
    Validated,
    Delivered,
    Cancelled,
}

impl BlStatus {
    pub const ALL: [BlStatus; 4] = [BlStatus::Pending, BlStatus::Validated, BlStatus::Delivered, BlStatus::Cancelled];

    pub fn code(self) -> &'static str {
        match self {
            BlStatus::Pending => "PENDING",
            BlStatus::Validated => "VALIDATED",
            BlStatus::Delivered => "DELIVERED",
            BlStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<BlStatus> {
        BlStatus::ALL.into_iter().find(|x| x.code() == s)
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            BlStatus::Pending => "À livrer",
            BlStatus::Validated => "Validé (sorti du stock)",
            BlStatus::Delivered => "Livré",
            BlStatus::Cancelled => "Annulé",
        }
    }

    /// Its quantities count against the invoice line's remaining to deliver.
    pub fn reserves(self) -> bool {
        self != BlStatus::Cancelled
    }

    /// Stock has left for it.
    pub fn shipped(self) -> bool {
        matches!(self, BlStatus::Validated | BlStatus::Delivered)
    }
}

/// How a BL was validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationMode {
    Qr,
    Manuel,
}

impl ValidationMode {
    pub fn code(self) -> &'static str {
        match self {
            ValidationMode::Qr => "QR",
            ValidationMode::Manuel => "MANUEL",
        }
    }
}

/// A BL line quantity: > 0 (whole pieces for U) and ≤ the line's remaining to deliver.
pub fn check_line_quantity(quantity: i64, remaining: i64, unit: crate::stock::Unit) -> Result<(), Rejection> {
    crate::stock::check_quantity(quantity, unit == crate::stock::Unit::U)?;
    if quantity > remaining {
        return Err(Rejection::new(
            "QUANTITE_A_LIVRER_DEPASSEE",
            422,
            format!(
                "Quantité à livrer supérieure au reste à livrer ({}).",
                crate::stock::fmt_qty(remaining.max(0), unit)
            ),
        )
        .with_details(json!({"reste": remaining.max(0)})));
    }
    Ok(())
}

/// PENDING → VALIDATED. A BL already validated answers with its first validation (date and validator name).
pub fn check_validate(
    status: BlStatus,
    mode: ValidationMode,
    note: Option<&str>,
    first: Option<(&str, &str)>,
) -> Result<Option<String>, Rejection> {
    match status {
        BlStatus::Pending => {}
        BlStatus::Validated | BlStatus::Delivered => {
            let (date, user) = first.unwrap_or(("?", "?"));
            return Err(Rejection::new(
                "LIVRAISON_DEJA_VALIDEE",
                409,
                format!("Livraison déjà validée le {date} par {user}."),
            )
            .with_details(json!({"date": date, "utilisateur": user})));
        }
        BlStatus::Cancelled => return Err(Rejection::transition_invalide(status.code(), BlStatus::Validated.code())),
    }
    match mode {
        ValidationMode::Manuel => crate::validation::reason(note.unwrap_or(""), 5).map(Some),
        ValidationMode::Qr => Ok(note.map(str::trim).filter(|n| !n.is_empty()).map(str::to_string)),
    }
}

/// Limits of the proof of delivery.
pub const SIGNATURE_MAX_BYTES: usize = 256 * 1024;
pub const PHOTO_MAX_BYTES: usize = 1024 * 1024;

/// VALIDATED → DELIVERED: recipient name (≥ 2 chars) and a PNG signature (≤ 256 KiB), optional JPEG photo (≤ 1 MiB).
pub fn check_deliver(
    status: BlStatus,
    recipient: &str,
    signature: Option<&[u8]>,
    photo: Option<&[u8]>,
) -> Result<String, Rejection> {
    if status != BlStatus::Validated {
        return Err(Rejection::transition_invalide(status.code(), BlStatus::Delivered.code()));
    }
    let name = recipient.trim();
    let png = signature.filter(|s| s.starts_with(b"\x89PNG\r\n\x1a\n"));
    if name.chars().count() < 2 || png.is_none() {
        return Err(Rejection::new("SIGNATURE_REQUISE", 422, "Nom du réceptionnaire et signature obligatoires."));
    }
    if png.is_some_and(|s| s.len() > SIGNATURE_MAX_BYTES) {
        return Err(
            crate::money::valeur_hors_limites().with_details(json!({"field": "signature", "max": SIGNATURE_MAX_BYTES}))
        );
    }
    if let Some(p) = photo
        && (!p.starts_with(&[0xFF, 0xD8, 0xFF]) || p.len() > PHOTO_MAX_BYTES)
    {
        return Err(crate::money::valeur_hors_limites().with_details(json!({"field": "photo", "max": PHOTO_MAX_BYTES})));
    }
    Ok(name.to_string())
}

/// PENDING → CANCELLED with a reason of at least 5 characters; a validated BL is corrected by a credit note.
pub fn check_cancel(status: BlStatus, reason: &str) -> Result<String, Rejection> {
    if status != BlStatus::Pending {
        return Err(Rejection::transition_invalide(status.code(), BlStatus::Cancelled.code()));
    }
    crate::validation::reason(reason, 5)
}

// ---- QR payloads (§12.2) ----------------------------------------------------------------------------------------

/// First 16 lowercase hex characters of HMAC-SHA256(secret, input).
pub fn mac(secret: &str, input: &str) -> String {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    m.update(input.as_bytes());
    m.finalize().into_bytes().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a raw scanned payload, hex (the scan log keeps the hash, never the payload).
pub fn payload_hash(payload: &str) -> String {
    use sha2::Digest;
    crate::audit::hex(&Sha256::digest(payload.as_bytes()))
}

/// `MCG:DLV:{uuid}:{reference}:{mac}`.
pub fn bl_payload(secret: &str, uuid: &str, reference: &str) -> String {
    format!("MCG:DLV:{uuid}:{reference}:{}", mac(secret, &format!("DLV|{uuid}|{reference}")))
}

/// `MCG:LOT:{lot number}:{mac}`.
pub fn lot_payload(secret: &str, lot_number: &str) -> String {
    format!("MCG:LOT:{lot_number}:{}", mac(secret, &format!("LOT|{lot_number}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrType {
    Dlv,
    Lot,
}

/// What a valid QR names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qr {
    Delivery { uuid: String, reference: String },
    Lot { number: String },
}

fn non_reconnu(code: &'static str) -> Rejection {
    Rejection::new(code, 422, "QR code non reconnu.")
}

fn equal_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Checks a scanned payload in the order of §12.2: prefix and known type, expected type, shape, MAC (constant time).
/// The BL's existence is the caller's step.
pub fn parse_qr(secret: &str, payload: &str, expected: QrType) -> Result<Qr, Rejection> {
    let p = payload.trim();
    let parts: Vec<&str> = p.split(':').collect();
    let kind = match (parts.first(), parts.get(1)) {
        (Some(&"MCG"), Some(&"DLV")) => QrType::Dlv,
        (Some(&"MCG"), Some(&"LOT")) => QrType::Lot,
        _ => return Err(non_reconnu("QR_FORMAT_INVALIDE")),
    };
    if kind != expected {
        return Err(non_reconnu("QR_TYPE_INATTENDU"));
    }
    let (input, given, qr) = match kind {
        QrType::Dlv => {
            if parts.len() != 5 || !is_uuid(parts[2]) || parts[3].is_empty() {
                return Err(non_reconnu("QR_FORMAT_INVALIDE"));
            }
            (
                format!("DLV|{}|{}", parts[2], parts[3]),
                parts[4],
                Qr::Delivery { uuid: parts[2].to_lowercase(), reference: parts[3].to_string() },
            )
        }
        QrType::Lot => {
            if parts.len() != 4 || parts[2].is_empty() {
                return Err(non_reconnu("QR_FORMAT_INVALIDE"));
            }
            (format!("LOT|{}", parts[2]), parts[3], Qr::Lot { number: parts[2].to_string() })
        }
    };
    if !equal_constant_time(mac(secret, &input).as_bytes(), given.as_bytes()) {
        return Err(Rejection::new("QR_SIGNATURE_INVALIDE", 422, "QR code non authentique."));
    }
    Ok(qr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const UUID: &str = "0190f3c2-7b1a-7c3d-8e4f-5a6b7c8d9e0f";

    #[test]
    fn the_mac_is_hmac_sha256_truncated_to_16_hex() {
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?") = 5bdcc146bf60754e…
        assert_eq!(mac("Jefe", "what do ya want for nothing?"), "5bdcc146bf60754e");
        let p = bl_payload(SECRET, UUID, "LIV-2025-00154");
        assert!(p.starts_with(&format!("MCG:DLV:{UUID}:LIV-2025-00154:")));
        assert_eq!(p.rsplit(':').next().unwrap().len(), 16);
    }

    #[test]
    fn a_good_payload_reads_back() {
        let p = bl_payload(SECRET, UUID, "LIV-2025-00154");
        assert_eq!(
            parse_qr(SECRET, &p, QrType::Dlv).unwrap(),
            Qr::Delivery { uuid: UUID.into(), reference: "LIV-2025-00154".into() }
        );
        let l = lot_payload(SECRET, "L250314-002");
        assert_eq!(parse_qr(SECRET, &l, QrType::Lot).unwrap(), Qr::Lot { number: "L250314-002".into() });
    }

    #[test]
    fn scenario_50_altered_forged_and_unexpected_payloads() {
        let p = bl_payload(SECRET, UUID, "LIV-2025-00154");
        let mut altered = p.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == '0' { '1' } else { '0' });
        assert_eq!(parse_qr(SECRET, &altered, QrType::Dlv).unwrap_err().code, "QR_SIGNATURE_INVALIDE");
        // Another reference with the first one's MAC.
        let forged = p.replace("LIV-2025-00154", "LIV-2025-00155");
        assert_eq!(parse_qr(SECRET, &forged, QrType::Dlv).unwrap_err().code, "QR_SIGNATURE_INVALIDE");
        // Signed with another secret.
        assert_eq!(parse_qr("other", &p, QrType::Dlv).unwrap_err().code, "QR_SIGNATURE_INVALIDE");
        // A lot label on the BL screen.
        let l = lot_payload(SECRET, "L250314-002");
        assert_eq!(parse_qr(SECRET, &l, QrType::Dlv).unwrap_err().code, "QR_TYPE_INATTENDU");
        for bad in
            ["", "hello", "MCG:XYZ:1:2:3", &format!("MCG:DLV:not-a-uuid:LIV-1:{}", "0".repeat(16)), "MCG:DLV:a:b"]
        {
            assert_eq!(parse_qr(SECRET, bad, QrType::Dlv).unwrap_err().code, "QR_FORMAT_INVALIDE", "{bad}");
        }
        assert_eq!(parse_qr(SECRET, &format!("{p}:extra"), QrType::Dlv).unwrap_err().code, "QR_FORMAT_INVALIDE");
        assert_eq!(parse_qr(SECRET, "hello", QrType::Dlv).unwrap_err().message, "QR code non reconnu.");
    }

    #[test]
    fn the_state_machine_scenarios_48_49_51_52() {
        assert_eq!(check_validate(BlStatus::Pending, ValidationMode::Qr, None, None).unwrap(), None);
        let e = check_validate(BlStatus::Validated, ValidationMode::Qr, None, Some(("14/03/2025 10:02", "Karim B.")))
            .unwrap_err();
        assert_eq!(e.code, "LIVRAISON_DEJA_VALIDEE");
        assert_eq!(e.message, "Livraison déjà validée le 14/03/2025 10:02 par Karim B..");
        assert_eq!(
            check_validate(BlStatus::Delivered, ValidationMode::Manuel, Some("ok ok ok"), None).unwrap_err().code,
            "LIVRAISON_DEJA_VALIDEE"
        );
        assert_eq!(
            check_validate(BlStatus::Cancelled, ValidationMode::Qr, None, None).unwrap_err().code,
            "TRANSITION_INVALIDE"
        );
        assert_eq!(
            check_validate(BlStatus::Pending, ValidationMode::Manuel, Some("ok"), None).unwrap_err().code,
            "MOTIF_TROP_COURT"
        );
        assert!(check_validate(BlStatus::Pending, ValidationMode::Manuel, Some("QR illisible"), None).is_ok());

        let png = b"\x89PNG\r\n\x1a\nrest";
        assert_eq!(check_deliver(BlStatus::Validated, "Ali", None, None).unwrap_err().code, "SIGNATURE_REQUISE");
        assert_eq!(check_deliver(BlStatus::Validated, "A", Some(png), None).unwrap_err().code, "SIGNATURE_REQUISE");
        assert_eq!(
            check_deliver(BlStatus::Validated, "Ali", Some(b"GIF89a"), None).unwrap_err().code,
            "SIGNATURE_REQUISE"
        );
        assert_eq!(check_deliver(BlStatus::Validated, " Ali Kaci ", Some(png), None).unwrap(), "Ali Kaci");
        assert_eq!(check_deliver(BlStatus::Pending, "Ali", Some(png), None).unwrap_err().code, "TRANSITION_INVALIDE");
        assert_eq!(
            check_deliver(BlStatus::Validated, "Ali", Some(png), Some(b"notjpeg")).unwrap_err().code,
            "VALEUR_HORS_LIMITES"
        );

        let e = check_line_quantity(5_000, 4_000, crate::stock::Unit::U).unwrap_err();
        assert_eq!(
            (e.details["reste"].as_i64(), e.message.as_str()),
            (Some(4_000), "Quantité à livrer supérieure au reste à livrer (4\u{A0}pcs).")
        );
        assert!(check_line_quantity(4_000, 4_000, crate::stock::Unit::U).is_ok());
        assert_eq!(check_cancel(BlStatus::Pending, "abc").unwrap_err().code, "MOTIF_TROP_COURT");
        assert_eq!(check_cancel(BlStatus::Pending, "Client absent").unwrap(), "Client absent");
        assert_eq!(check_cancel(BlStatus::Validated, "Client absent").unwrap_err().code, "TRANSITION_INVALIDE");
    }
}
