//! Expected outputs are what Go's text/template with sprig prints for the
//! same template and data.

use serde_json::{Value, json};

use super::*;

fn data() -> Value {
    json!({
        "Iteration": 3,
        "Replica": 1,
        "JobName": "density",
        "UUID": "1234",
        "List": ["a", "b"],
        "Vars": {"name": "web", "port": 8080, "nested": {"deep": true}},
        "Empty": "",
        "Float": 2.5,
        "Null": null,
    })
}

fn ok(template: &str) -> String {
    render("t", template, &data(), MissingKey::Error)
        .unwrap_or_else(|err| panic!("{template:?}: {err}"))
}

fn fails(template: &str) -> String {
    match render("t", template, &data(), MissingKey::Error) {
        Ok(out) => panic!("{template:?} rendered {out:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn fields_variables_and_literals() {
    assert_eq!(ok("name-{{.Iteration}}-{{.Replica}}"), "name-3-1");
    assert_eq!(ok("{{.Vars.name}}:{{.Vars.port}}"), "web:8080");
    assert_eq!(ok("{{ .Vars.nested.deep }}"), "true");
    assert_eq!(ok("{{ $x := .Vars }}{{ $x.name }}"), "web");
    assert_eq!(ok("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
    assert_eq!(
        ok("{{ \"a\\tb\" }}|{{ `raw\\n` }}|{{ 'a' }}"),
        "a\tb|raw\\n|97"
    );
    assert_eq!(
        ok("{{ 0x10 }} {{ -3 }} {{ 1.5 }} {{ 1e3 }}"),
        "16 -3 1.5 1000"
    );
    assert_eq!(ok("{{ .List }} {{ .Vars.nested }}"), "[a b] map[deep:true]");
    assert_eq!(ok("{{ .Null }}"), "<no value>");
    assert_eq!(ok("{{ (index .List 1) }}{{ (.Vars).name }}"), "bweb");
    assert_eq!(
        ok("{{ with $v := .Vars }}{{ $.JobName }}-{{ $v.name }}{{ end }}"),
        "density-web"
    );
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(ok("a  {{- .Iteration -}}  \n b"), "a3b");
    assert_eq!(ok("a {{/* note */}} b"), "a  b");
    assert_eq!(ok("a {{- /* note */ -}} b"), "ab");
    // A minus sign without a space is a number, not a trim marker.
    assert_eq!(ok("a {{-3}}"), "a -3");
    assert_eq!(ok("{{ \"}}\" }}"), "}}");
}

#[test]
fn control_structures() {
    assert_eq!(
        ok("{{ if eq .Iteration 3 }}yes{{ else }}no{{ end }}"),
        "yes"
    );
    assert_eq!(
        ok("{{ if eq .Iteration 1 }}one{{ else if eq .Iteration 3 }}three{{ else }}other{{ end }}"),
        "three"
    );
    assert_eq!(ok("{{ with .Empty }}set{{ else }}unset{{ end }}"), "unset");
    assert_eq!(
        ok("{{ with .Vars }}{{ .name }}{{ else }}none{{ end }}"),
        "web"
    );
    assert_eq!(
        ok("{{ with .Empty }}a{{ else with .List }}{{ index . 0 }}{{ end }}"),
        "a"
    );
}

#[test]
fn range_over_lists_maps_and_numbers() {
    assert_eq!(
        ok("{{ range $i, $v := .List }}[{{$i}}={{$v}}]{{ end }}"),
        "[0=a][1=b]"
    );
    assert_eq!(ok("{{ range .List }}{{ . }},{{ end }}"), "a,b,");
    assert_eq!(
        ok("{{ range $k, $v := .Vars }}{{ $k }};{{ end }}"),
        "name;nested;port;"
    );
    assert_eq!(ok("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(
        ok("{{ range until 4 }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }}"),
        "01"
    );
    assert_eq!(
        ok("{{ range until 3 }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ . }}{{ end }}"),
        "02"
    );
    assert_eq!(ok("{{ range list }}x{{ else }}none{{ end }}"), "none");
    // Variables declared inside a range do not leak out of it.
    assert!(
        fails("{{ range .List }}{{ $y := . }}{{ end }}{{ $y }}").contains("undefined variable")
    );
}

#[test]
fn define_template_and_block() {
    let text = r#"{{- define "env" -}}
- name: {{ .name }}
  value: {{ .value }}
{{- end -}}
env:
{{ template "env" (dict "name" "A" "value" 1) }}
{{ block "extra" . }}default {{ .JobName }}{{ end }}"#;
    assert_eq!(ok(text), "env:\n- name: A\n  value: 1\ndefault density");
    let mut main = Template::parse("main", r#"{{ template "f" 5 }}"#).expect("parses");
    let functions =
        Template::parse("funcs.tpl", r#"{{ define "f" }}f({{ . }}){{ end }}"#).expect("parses");
    main.include(&functions);
    assert_eq!(
        main.render(&json!({}), MissingKey::Error).expect("renders"),
        "f(5)"
    );
    assert!(
        fails(r#"{{ define "loop" }}{{ template "loop" . }}{{ end }}{{ template "loop" . }}"#)
            .contains("maximum template depth")
    );
}

#[test]
fn kube_burner_function_template_example() {
    let text = r#"{{- define "env_func" -}}
{{- range $i := until $.n }}
{{- printf "- name: ENVVAR%d_%s\n  value: %s" (add $i 1) $.name $.envVar | nindent $.indent }}
{{- end }}
{{- end }}
env:
{{- template "env_func" (dict "name" .name "envVar" .envVar "n" 2 "indent" 8) }}"#;
    let out = render(
        "t",
        text,
        &json!({"name": "web", "envVar": "x"}),
        MissingKey::Error,
    )
    .expect("renders");
    assert_eq!(
        out,
        // The newline after the define's `{{- end }}` is not trimmed.
        "\nenv:\n        - name: ENVVAR1_web\n          value: x\n        - name: ENVVAR2_web\n          value: x"
    );
}

#[test]
fn pipelines_put_the_piped_value_last() {
    assert_eq!(ok("{{ .Iteration | add 1 }}"), "4");
    assert_eq!(ok("{{ .Iteration | sub 10 }}"), "7");
    assert_eq!(ok("{{ .JobName | upper | printf \"%s!\" }}"), "DENSITY!");
    assert_eq!(ok("{{ \"\" | default \"fallback\" }}"), "fallback");
    assert_eq!(ok("{{ .Vars.name | default \"fallback\" }}"), "web");
    assert!(fails("{{ .Iteration | .JobName }}").contains("non-function"));
}

#[test]
fn go_builtins() {
    assert_eq!(
        ok("{{ len .List }} {{ len .Vars }} {{ len \"abc\" }}"),
        "2 3 3"
    );
    assert_eq!(
        ok("{{ index .Vars \"name\" }} {{ index .List 0 }}"),
        "web a"
    );
    assert_eq!(
        ok("{{ slice \"abcdef\" 1 3 }} {{ slice .List 1 }}"),
        "bc [b]"
    );
    assert_eq!(
        ok("{{ and 1 0 }} {{ and 1 2 }} {{ or 0 \"\" }} {{ or 0 5 }}"),
        "0 2  5"
    );
    assert_eq!(
        ok("{{ not .Empty }} {{ ne 1 2 }} {{ lt 1 2 }} {{ ge 2 2 }} {{ gt \"b\" \"a\" }}"),
        "true true true true true"
    );
    assert_eq!(ok("{{ eq .Iteration 1 2 3 }}"), "true");
    assert_eq!(
        ok("{{ print 1 2 \"a\" 3 }} {{ println \"x\" }}"),
        "1 2a3 x\n"
    );
    assert_eq!(ok("{{ urlquery \"a b&c\" }}"), "a+b%26c");
    assert!(fails("{{ eq 1 \"1\" }}").contains("incompatible types"));
}

#[test]
fn printf_verbs() {
    assert_eq!(
        ok("{{ printf \"%05d|%-4d|%+d|%x|%X|%o|%b\" 42 7 3 255 255 8 5 }}"),
        "00042|7   |+3|ff|FF|10|101"
    );
    assert_eq!(
        ok("{{ printf \"%.2f|%8.3f|%e|%g\" 3.14159 2.5 1234.5 0.5 }}"),
        "3.14|   2.500|1.234500e+03|0.5"
    );
    assert_eq!(
        ok("{{ printf \"%s|%q|%v|%t|%c|%%\" \"a\" \"b\" .List true 65 }}"),
        "a|\"b\"|[a b]|true|A|%"
    );
    assert_eq!(
        ok("{{ printf \"%5s|%-5s|%.2s\" \"ab\" \"ab\" \"abc\" }}"),
        "   ab|ab   |ab"
    );
    assert_eq!(ok("{{ printf \"%d\" \"x\" }}"), "%!d(string=x)");
    assert_eq!(ok("{{ printf \"%d %d\" 1 }}"), "1 %!d(MISSING)");
}

#[test]
fn sprig_math_and_conversion() {
    assert_eq!(
        ok("{{ add 1 2 3 }} {{ add1 .Iteration }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ mod 7 2 }}"),
        "6 4 24 3 1"
    );
    assert_eq!(
        ok("{{ max 1 5 3 }} {{ min 4 2 }} {{ add \"2\" 1 }} {{ add 1.9 1 }}"),
        "5 2 3 2"
    );
    assert_eq!(
        ok("{{ addf 1.5 1 }} {{ divf 1 4 }} {{ floor 2.7 }} {{ round 2.567 2 }}"),
        "2.5 0.25 2 2.57"
    );
    assert_eq!(
        ok("{{ int \"12\" }} {{ atoi \"x\" }} {{ toString 5 }} {{ float64 \"1.5\" }}"),
        "12 0 5 1.5"
    );
    assert!(fails("{{ div 1 0 }}").contains("divide by zero"));
    let n: i64 = ok("{{ randInt 5 10 }}").parse().expect("a number");
    assert!((5..10).contains(&n));
}

#[test]
fn sprig_strings() {
    assert_eq!(
        ok("{{ upper \"ab\" }} {{ lower \"AB\" }} {{ title \"hello world\" }}"),
        "AB ab Hello World"
    );
    assert_eq!(
        ok(
            "{{ trim \"  x \" }}|{{ trimAll \"$\" \"$5$\" }}|{{ trimPrefix \"a\" \"abc\" }}|{{ trimSuffix \"c\" \"abc\" }}"
        ),
        "x|5|bc|ab"
    );
    assert_eq!(
        ok(
            "{{ replace \"a\" \"b\" \"aaa\" }} {{ repeat 3 \"x\" }} {{ substr 1 3 \"abcd\" }} {{ trunc 2 \"abcd\" }}"
        ),
        "bbb xxx bc ab"
    );
    assert_eq!(
        ok(
            "{{ contains \"b\" \"abc\" }} {{ hasPrefix \"a\" \"abc\" }} {{ hasSuffix \"x\" \"abc\" }}"
        ),
        "true true false"
    );
    assert_eq!(
        ok("{{ quote \"a\" 1 }} {{ squote \"a\" }} {{ cat \"a\" 1 }} {{ nospace \"a b c\" }}"),
        "\"a\" \"1\" 'a' a 1 abc"
    );
    assert_eq!(
        ok("{{ indent 2 \"a\\nb\" }}|{{ nindent 2 \"a\" }}"),
        "  a\n  b|\n  a"
    );
    assert_eq!(
        ok("{{ join \",\" .List }} {{ splitList \",\" \"a,b\" }}"),
        "a,b [a b]"
    );
    assert_eq!(ok("{{ b64enc \"hi\" }} {{ b64dec \"aGk=\" }}"), "aGk= hi");
    let random = ok("{{ randAlphaNum 8 }}");
    assert_eq!(random.len(), 8);
    assert!(random.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        ok("{{ randNumeric 4 }}")
            .chars()
            .filter(char::is_ascii_digit)
            .count(),
        4
    );
    assert_eq!(ok("{{ uuidv4 }}").len(), 36);
}

#[test]
fn sprig_lists_and_dicts() {
    assert_eq!(
        ok("{{ list 1 2 }} {{ append (list 1) 2 }} {{ prepend (list 1) 0 }}"),
        "[1 2] [1 2] [0 1]"
    );
    assert_eq!(
        ok("{{ first .List }} {{ last .List }} {{ rest .List }} {{ initial .List }}"),
        "a b [b] [a]"
    );
    assert_eq!(
        ok("{{ until 3 }} {{ untilStep 0 10 4 }} {{ seq 3 }} {{ seq 2 4 }}"),
        "[0 1 2] [0 4 8] 1 2 3 2 3 4"
    );
    assert_eq!(
        ok("{{ has \"a\" .List }} {{ concat .List (list \"c\") }} {{ uniq (list 1 1 2) }}"),
        "true [a b c] [1 2]"
    );
    assert_eq!(
        ok(
            "{{ $d := dict \"a\" 1 \"b\" 2 }}{{ get $d \"a\" }} {{ hasKey $d \"c\" }} {{ keys $d }} {{ values $d }}"
        ),
        "1 false [a b] [1 2]"
    );
    assert_eq!(ok("{{ (set (dict) \"k\" \"v\").k }}"), "v");
    assert_eq!(
        ok("{{ toJson .Vars.nested }} {{ toJson .List }}"),
        "{\"deep\":true} [\"a\",\"b\"]"
    );
    assert_eq!(
        ok("{{ empty .Empty }} {{ coalesce \"\" 0 \"x\" }} {{ ternary \"y\" \"n\" true }}"),
        "true x y"
    );
    assert!(fails("{{ fail \"stop here\" }}").contains("stop here"));
}

#[test]
fn missing_keys_fail_unless_zero_is_asked_for() {
    let err = fails("line one\n{{ .Nope }}");
    assert_eq!(err, "template t:2: map has no entry for key \"Nope\"");
    assert!(fails("{{ .Null.deeper }}").contains("nil data"));
    let out = render(
        "t",
        "{{ .Nope }}|{{ .Nope.deeper }}",
        &data(),
        MissingKey::Zero,
    )
    .expect("renders");
    assert_eq!(out, "<no value>|<no value>");
    assert!(fails("{{ .Iteration.field }}").contains("can't evaluate field field in type int"));
}

#[test]
fn parse_errors_name_the_line() {
    for (text, expected) in [
        ("a\n{{ .x ", "template t:2: unclosed action"),
        ("{{ if .x }}", "template t:1: unexpected EOF in if"),
        ("{{ end }}", "template t:1: unexpected {{end}}"),
        ("{{ \"abc }}", "template t:1: unterminated quoted string"),
        ("{{ (add 1 2 }}", "template t:1: unclosed left paren"),
        ("{{ break }}", "template t:1: {{break}} outside {{range}}"),
        (
            "{{ nosuch 1 }}",
            "template t:1: function \"nosuch\" not defined",
        ),
        ("{{ @ }}", "template t:1: unexpected '@' in command"),
        ("{{ }}", "template t:1: missing value for command"),
    ] {
        let err = render("t", text, &data(), MissingKey::Error).expect_err(text);
        assert_eq!(err.to_string(), expected, "{text:?}");
    }
}

#[test]
fn every_listed_function_exists() {
    for name in FUNCTIONS {
        if *name == "and" || *name == "or" {
            continue;
        }
        assert!(funcs::lookup(name).is_some(), "{name}");
    }
}

#[test]
fn runaway_templates_end_with_an_error() {
    assert!(fails("{{ range 2000000 }}{{ end }}").contains("at most 1000000"));
    assert!(
        fails("{{ range 1000000 }}{{ range 1000000 }}x{{ end }}{{ end }}")
            .contains("too much work")
    );
}
