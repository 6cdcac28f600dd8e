//! The server-to-server `notify:` line for a stored notification (§8.3).

use at_protocol::command::{MessageType as WireMessageType, NotifyOp, NotifyParams};
use at_protocol::AtSign;

use crate::notifications::{MessageType, Notification, Operation};

/// Builds the delivery command: id, operation, message type, notifier and `ttln`, then the
/// metadata the recipient needs (ttl/ttb/ttr/ccd, isEncrypted and the encryption fields), then
/// the notification key and value. Priority, strategy and latestN stay with the sender.
pub fn delivery_command(n: &Notification) -> Option<String> {
    let to = AtSign::parse(&n.to).ok()?;
    let mut p = NotifyParams {
        id: Some(n.id.clone()),
        operation: Some(match n.operation {
            Operation::Update => NotifyOp::Update,
            Operation::Delete => NotifyOp::Delete,
        }),
        message_type: Some(match n.message_type {
            MessageType::Key => WireMessageType::Key,
            MessageType::Text => WireMessageType::Text,
        }),
        notifier: Some(n.notifier.clone()),
        ttln: u64::try_from(n.ttl).ok().filter(|t| *t > 0),
        to: Some(to.clone()),
        value: n.value.clone(),
        ..Default::default()
    };
    let recipient_prefix = format!("{}:", to.as_str());
    let rest = n.key.strip_prefix(&recipient_prefix).unwrap_or(&n.key);
    match n.message_type {
        MessageType::Text => p.key = rest.to_string(),
        MessageType::Key => {
            let at = rest.rfind('@')?;
            p.key = rest[..at].to_string();
            p.owner = Some(AtSign::parse(&rest[at..]).ok()?);
        }
    }
    let md = &mut p.metadata;
    md.is_encrypted = Some(n.is_encrypted);
    if let Some(meta) = n
        .metadata
        .as_ref()
        .filter(|_| n.operation == Operation::Update)
    {
        md.ttl = meta.ttl;
        md.ttb = meta.ttb;
        md.ttr = meta.ttr;
        md.ccd = meta.ttr.and(meta.ccd);
        let mut fragment = String::new();
        for (name, value) in &meta.strings {
            fragment.push_str(&format!(":{name}:{value}"));
        }
        if let Ok(strings) = at_protocol::Metadata::parse_fragment(&fragment) {
            md.shared_key_enc = strings.shared_key_enc;
            md.pub_key_cs = strings.pub_key_cs;
            md.pub_key_hash = strings.pub_key_hash;
            md.hashing_algo = strings.hashing_algo;
            md.encoding = strings.encoding;
            md.enc_key_name = strings.enc_key_name;
            md.enc_algo = strings.enc_algo;
            md.iv_nonce = strings.iv_nonce;
            md.ske_enc_key_name = strings.ske_enc_key_name;
            md.ske_enc_algo = strings.ske_enc_algo;
            md.data_signature = strings.data_signature;
            md.app_metadata = strings.app_metadata;
        }
    }
    Some(p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Metadata;
    use crate::notifications::{Kind, Priority, Status};

    fn sample() -> Notification {
        let mut meta = Metadata::new_record("@alice", 0);
        meta.ttr = Some(86400);
        meta.ccd = Some(true);
        meta.is_encrypted = true;
        meta.strings.insert("ivNonce".into(), "AAAA".into());
        meta.strings.insert("sharedKeyEnc".into(), "S0VZ".into());
        Notification {
            id: "n-1".into(),
            from: "@alice".into(),
            to: "@bob".into(),
            key: "@bob:phone.wavi@alice".into(),
            value: Some("c2VjcmV0".into()),
            operation: Operation::Update,
            message_type: MessageType::Key,
            kind: Kind::Sent,
            status: Status::Queued,
            priority: Priority::Low,
            strategy: "all".into(),
            latest_n: 1,
            notifier: "SYSTEM".into(),
            retry_count: 0,
            created_at: 0,
            ttl: 60_000,
            expires_at: 60_000,
            is_encrypted: true,
            metadata: Some(meta),
        }
    }

    #[test]
    fn builds_the_reference_line_and_parses_back() {
        let line = delivery_command(&sample()).unwrap();
        assert_eq!(
            line,
            "notify:id:n-1:update:messageType:key:notifier:SYSTEM:ttln:60000:ttr:86400:ccd:true\
             :isEncrypted:true:sharedKeyEnc:S0VZ:ivNonce:AAAA:@bob:phone.wavi@alice:c2VjcmV0"
        );
        let Ok(at_protocol::Command::Notify(p)) = at_protocol::Command::parse(&line) else {
            panic!("does not parse: {line}");
        };
        assert_eq!(p.notification_key(), "@bob:phone.wavi@alice");
        assert_eq!(p.value.as_deref(), Some("c2VjcmV0"));
    }

    #[test]
    fn deletes_carry_no_metadata_and_text_keeps_its_words() {
        let mut n = sample();
        n.operation = Operation::Delete;
        n.value = None;
        let line = delivery_command(&n).unwrap();
        assert!(
            line.ends_with(":isEncrypted:true:@bob:phone.wavi@alice"),
            "{line}"
        );
        let mut t = sample();
        t.message_type = MessageType::Text;
        t.key = "@bob:hello".into();
        t.value = None;
        t.metadata = None;
        t.is_encrypted = false;
        let line = delivery_command(&t).unwrap();
        assert!(
            line.ends_with(
                "messageType:text:notifier:SYSTEM:ttln:60000:isEncrypted:false:@bob:hello"
            ),
            "{line}"
        );
    }
}
