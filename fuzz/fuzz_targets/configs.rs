//! Image configurations and the history-to-layers matching the image view
//! and `registry history` show.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage::inspect::{config_info, match_history, parse_config};

fuzz_target!(|data: &[u8]| {
    let Some((&layers, body)) = data.split_first() else {
        return;
    };
    let layers = layers as usize;
    let config = parse_config(body).ok();
    if let Some(c) = &config {
        let _ = config_info(c);
    }
    let (rows, _) = match_history(config.as_ref(), layers);
    // Every layer appears exactly once, in order.
    let shown: Vec<usize> = rows.iter().filter_map(|r| r.layer).collect();
    assert_eq!(shown, (0..layers).collect::<Vec<_>>());
});
