//! Characters a provider name may not hold where they show nothing.
//!
//! One file, in two crates: the runtime (`config::name_clashes`) and `#[resilient]`
//! (`args::provider_name_problem`) refuse the same names, and cannot call each other (a
//! proc-macro crate exports only macros). The macros crate's test
//! `the_invisible_rule_is_the_runtime_s` keeps the two copies equal, byte for byte.

/// The first character of `name` that shows as nothing where it stands, pasted along with it:
/// `kimi\u{200b}` is a breaker of its own that reads `RESILIENCE_KIMI__…` and looks like `kimi`
/// everywhere it is shown, as a stray space would. Refused anywhere: the format characters and
/// others that never show (a zero-width space, a byte-order mark, a soft hyphen, a direction
/// mark or override, a word joiner, a tag character outside a flag, a Hangul filler). A
/// zero-width joiner or non-joiner is part of how a word is written between two characters of a
/// script that joins or stacks them (Persian's `کتاب‌ها`, Sinhala's `ශ්‍රී`, an emoji sequence):
/// refused only where it shows nothing, next to an ASCII character, a space or a letter of a
/// script that neither joins nor stacks (Latin, Greek, Cyrillic, Han, kana, Hangul), or at
/// either end. A selector (a variation selector, the combining grapheme joiner) changes the
/// character before it: refused after an ASCII one or another selector, but for an emoji keycap
/// (`1\u{fe0f}\u{20e3}`). Tag
/// characters show only as a flag's tag sequence (`🏴`, tags, the cancel tag). `#[resilient]`
/// refuses the same at compile time (`args::provider_name_problem`).
pub(crate) fn invisible_in(name: &str) -> Option<char> {
    // Never shown, wherever it stands.
    fn never(c: char) -> bool {
        matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180E}'
                | '\u{200B}'
                | '\u{200E}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E00FF}'
                | '\u{E01F0}'..='\u{E0FFF}'
        )
    }
    // Letters of scripts that neither join nor stack, and the marks they take: a joiner
    // between them shows nothing, as between two ASCII letters.
    fn never_joins(c: char) -> bool {
        matches!(
            c,
            '\u{00C0}'..='\u{036F}'
                | '\u{0370}'..='\u{052F}'
                | '\u{1E00}'..='\u{1FFF}'
                | '\u{2E80}'..='\u{9FFF}'
                | '\u{AC00}'..='\u{D7AF}'
                | '\u{F900}'..='\u{FAFF}'
                | '\u{FF00}'..='\u{FFEF}'
                | '\u{20000}'..='\u{3FFFF}'
        )
    }
    // An emoji tag sequence's tags (a subdivision flag: `🏴`, `gbsct` in tags, the cancel tag).
    fn tag(c: char) -> bool {
        matches!(c, '\u{E0020}'..='\u{E007E}')
    }
    fn joiner(c: char) -> bool {
        matches!(c, '\u{200C}' | '\u{200D}')
    }
    fn selector(c: char) -> bool {
        matches!(
            c,
            '\u{034F}' | '\u{180B}'..='\u{180D}' | '\u{180F}' | '\u{FE00}'..='\u{FE0F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
    }
    // A character of a script that may join, stack or combine with its neighbour.
    let of_a_script = |c: Option<char>| {
        c.is_some_and(|c| {
            !c.is_ascii() && !c.is_whitespace() && !c.is_control() && !never(c) && !joiner(c)
        })
    };
    let chars: Vec<char> = name.chars().collect();
    (0..chars.len()).find_map(|i| {
        let c = chars[i];
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        // Each tag after the flag or a tag, and before a tag or the cancel tag: together, a
        // flag followed by tags and the cancel tag, and nothing else.
        let shows = if tag(c) {
            (before == Some('\u{1F3F4}') || before.is_some_and(tag))
                && after.is_some_and(|a| tag(a) || a == '\u{E007F}')
        } else if c == '\u{E007F}' {
            before.is_some_and(tag)
        } else if never(c) {
            false
        } else if joiner(c) {
            of_a_script(before)
                && of_a_script(after)
                && !before.is_some_and(never_joins)
                && !after.is_some_and(never_joins)
        } else if selector(c) {
            (of_a_script(before) && !before.is_some_and(selector))
                || (c == '\u{FE0F}'
                    && before.is_some_and(|b| b.is_ascii_graphic())
                    && after == Some('\u{20E3}'))
        } else {
            true
        };
        (!shows).then_some(c)
    })
}
