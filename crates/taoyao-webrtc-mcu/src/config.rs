//! `[mcu]`: the mixer's settings.

use serde::{Deserialize, Serialize};
use taoyao_boot::{Invalid, Validate};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct McuConfig {
    /// At most this many of the loudest speakers are mixed at once.
    pub max_speakers: usize,
    /// Publishers' audio packets queued for a room's mixer; when it is this far behind, newer
    /// packets are dropped (and counted) rather than queued without end.
    pub queue_packets: usize,
}

impl Default for McuConfig {
    fn default() -> Self {
        McuConfig {
            max_speakers: 4,
            queue_packets: 1024,
        }
    }
}

impl Validate for McuConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.max_speakers == 0 {
            return Err(Invalid::new("mcu.max_speakers", "must be greater than 0"));
        }
        if self.queue_packets == 0 {
            return Err(Invalid::new("mcu.queue_packets", "must be greater than 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_speakers_or_queue_is_refused_by_name() {
        assert_eq!(McuConfig::default().validate(), Ok(()));
        let e = McuConfig {
            max_speakers: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("mcu.max_speakers"), "{e}");
        let e = McuConfig {
            queue_packets: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("mcu.queue_packets"), "{e}");
    }
}
