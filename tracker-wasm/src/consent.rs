//! Consent precedence (SPEC §2): which of the signals a page can give decides
//! whether the tracker may store identifiers. Pure; the browser adapter
//! collects the signals and re-resolves whenever one changes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Granted,
    Pending,
    Denied,
}

impl Consent {
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Granted => "granted",
            Consent::Pending => "pending",
            Consent::Denied => "denied",
        }
    }
}

/// Every consent signal the page has given so far; `None` = no opinion yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signals {
    /// `navigator.globalPrivacyControl === true`.
    pub gpc: bool,
    /// `ringpath('consent', 'granted' | 'denied')`, the latest call.
    pub explicit: Option<bool>,
    /// IAB TCF v2: `gdprApplies === false` or purpose 1 consented.
    pub tcf: Option<bool>,
    /// Google Consent Mode v2: the latest `analytics_storage` default/update.
    pub gcm: Option<bool>,
    /// `data-consent="not-required"` on the script tag.
    pub not_required: bool,
}

impl Signals {
    /// Strongest signal first: GPC > explicit > TCF > Consent Mode > attribute.
    pub fn resolve(&self) -> Consent {
        if self.gpc {
            return Consent::Denied;
        }
        let decided = self.explicit.or(self.tcf).or(self.gcm);
        match decided {
            Some(true) => Consent::Granted,
            Some(false) => Consent::Denied,
            None if self.not_required => Consent::Granted,
            None => Consent::Pending,
        }
    }
}

/// Reads a TCF v2 `tcData` answer: `Some(granted)` once the CMP has an answer
/// (`tcloaded` / `useractioncomplete`, or GDPR does not apply), else `None`.
pub fn tcf_decision(success: bool, gdpr_applies: Option<bool>, event_status: &str, purpose1: Option<bool>) -> Option<bool> {
    if !success {
        return None;
    }
    if gdpr_applies == Some(false) {
        return Some(true);
    }
    if event_status == "tcloaded" || event_status == "useractioncomplete" {
        return Some(purpose1 == Some(true));
    }
    None
}

/// Reads one Consent Mode command (`gtag('consent', 'default'|'update', {...})`
/// as pushed onto `dataLayer`): `Some(granted)` when it sets `analytics_storage`.
pub fn gcm_decision(command: &str, action: &str, analytics_storage: Option<&str>) -> Option<bool> {
    if command != "consent" || (action != "default" && action != "update") {
        return None;
    }
    match analytics_storage? {
        "granted" => Some(true),
        "denied" => Some(false),
        _ => None,
    }
}

/// The `data-consent` attribute: only the exact value `not-required` waives consent.
pub fn attribute_waives_consent(value: Option<&str>) -> bool {
    value.is_some_and(|v| ringpath_types::url::trim(v).eq_ignore_ascii_case("not-required"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(gpc: bool, explicit: Option<bool>, tcf: Option<bool>, gcm: Option<bool>, not_required: bool) -> Signals {
        Signals { gpc, explicit, tcf, gcm, not_required }
    }

    #[test]
    fn attribute_alone_decides_pending_or_granted() {
        assert_eq!(signals(false, None, None, None, false).resolve(), Consent::Pending);
        assert_eq!(signals(false, None, None, None, true).resolve(), Consent::Granted);
    }

    #[test]
    fn global_privacy_control_beats_every_other_signal() {
        for explicit in [None, Some(true), Some(false)] {
            for tcf in [None, Some(true), Some(false)] {
                for gcm in [None, Some(true), Some(false)] {
                    for not_required in [false, true] {
                        assert_eq!(signals(true, explicit, tcf, gcm, not_required).resolve(), Consent::Denied);
                    }
                }
            }
        }
    }

    #[test]
    fn each_signal_overrides_only_the_weaker_ones() {
        // The exhaustive table: the first decided signal in precedence order wins.
        for explicit in [None, Some(true), Some(false)] {
            for tcf in [None, Some(true), Some(false)] {
                for gcm in [None, Some(true), Some(false)] {
                    for not_required in [false, true] {
                        let want = match explicit.or(tcf).or(gcm) {
                            Some(true) => Consent::Granted,
                            Some(false) => Consent::Denied,
                            None if not_required => Consent::Granted,
                            None => Consent::Pending,
                        };
                        assert_eq!(signals(false, explicit, tcf, gcm, not_required).resolve(), want);
                    }
                }
            }
        }
        assert_eq!(signals(false, Some(true), Some(false), Some(false), false).resolve(), Consent::Granted);
        assert_eq!(signals(false, Some(false), Some(true), Some(true), true).resolve(), Consent::Denied);
        assert_eq!(signals(false, None, Some(false), Some(true), true).resolve(), Consent::Denied);
        assert_eq!(signals(false, None, None, Some(false), true).resolve(), Consent::Denied);
    }

    #[test]
    fn tcf_answers_only_once_the_user_or_cmp_has_decided() {
        assert_eq!(tcf_decision(true, Some(true), "tcloaded", Some(true)), Some(true));
        assert_eq!(tcf_decision(true, Some(true), "useractioncomplete", Some(false)), Some(false));
        assert_eq!(tcf_decision(true, Some(true), "useractioncomplete", None), Some(false));
        assert_eq!(tcf_decision(true, Some(true), "cmpuishown", Some(true)), None);
        assert_eq!(tcf_decision(true, Some(false), "cmpuishown", None), Some(true));
        assert_eq!(tcf_decision(false, Some(false), "tcloaded", Some(true)), None);
    }

    #[test]
    fn consent_mode_reads_analytics_storage_only() {
        assert_eq!(gcm_decision("consent", "default", Some("denied")), Some(false));
        assert_eq!(gcm_decision("consent", "update", Some("granted")), Some(true));
        assert_eq!(gcm_decision("consent", "update", None), None);
        assert_eq!(gcm_decision("config", "update", Some("granted")), None);
        assert_eq!(gcm_decision("consent", "other", Some("granted")), None);
    }

    #[test]
    fn only_not_required_waives_consent() {
        assert!(attribute_waives_consent(Some("not-required")));
        assert!(attribute_waives_consent(Some(" Not-Required ")));
        assert!(!attribute_waives_consent(Some("required")));
        assert!(!attribute_waives_consent(Some("")));
        assert!(!attribute_waives_consent(None));
    }
}
