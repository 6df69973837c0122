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
/// mark or override, a word joiner, a tag character, a Hangul filler). A zero-width joiner or
/// non-joiner is part of how a word is written between two characters of a script that joins
/// or stacks them (Persian's `کتاب‌ها`, Sinhala's `ශ්‍රී`, an emoji sequence): refused only where
/// it shows nothing, next to an ASCII character or a space, or at either end. A selector (a
/// variation selector, the combining grapheme joiner) changes the character before it: refused
/// after an ASCII one, but for an emoji keycap (`1\u{fe0f}\u{20e3}`). `#[resilient]` refuses the
/// same at compile time (`args::provider_name_problem`).
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
        let shows = if never(c) {
            false
        } else if joiner(c) {
            of_a_script(before) && of_a_script(after)
        } else if selector(c) {
            of_a_script(before)
                || (c == '\u{FE0F}'
                    && before.is_some_and(|b| b.is_ascii_graphic())
                    && after == Some('\u{20E3}'))
        } else {
            true
        };
        (!shows).then_some(c)
    })
}
