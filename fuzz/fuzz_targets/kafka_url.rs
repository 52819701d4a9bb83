//! `kafka://` URL parsing on arbitrary text: never a panic, and whatever
//! parses formats to a URL that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skotch_stream::KafkaUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for candidate in [text.to_string(), format!("kafka://{text}")] {
        if let Ok(url) = candidate.parse::<KafkaUrl>() {
            let again: KafkaUrl = url.to_string().parse().expect("formatted URL parses");
            assert_eq!(again, url);
        }
    }
});
