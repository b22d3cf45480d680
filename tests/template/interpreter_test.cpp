// Jinja2 semantics, case by case. Every expected string here was produced by Python Jinja2 3.1.6
// (SandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "template/template.h"

namespace runnel::tmpl {
namespace {

struct Case {
  const char* source;
  const char* vars;
  const char* expected;
};

const Case kCases[] = {
    {R"J({{ none }}|{{ true }}|{{ 1.0 }}|{{ 1e20 }}|{{ 0.1 + 0.2 }}|{{ [1, 'a', none, true, {'k': "it's"}] }}|{{ (1,) }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}|{{ 'a' ~ 1 ~ none }})J",
     R"J({})J",
     R"J(None|True|1.0|1e+20|0.30000000000000004|[1, 'a', None, True, {'k': "it's"}]|(1,)|3|-4|2|3.5|1024|a1None)J"},
    {R"J({% for x in [1,2,3] %}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.revindex }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %})J",
     R"J({})J", R"J(1TrueFalse332;2FalseFalse2313;3FalseTrue132;)J"},
    {R"J({% for x in [1,2,3,4] if x is odd %}{{ loop.index }}:{{ x }}{% else %}none{% endfor %}|{% for x in [] %}a{% else %}empty{% endfor %})J",
     R"J({})J", R"J(1:12:3|empty)J"},
    {R"J({% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }} {% endfor %}|{% for k in {'z': 1, 'a': 2} %}{{ k }}{% endfor %})J",
     R"J({})J", R"J(a=1 b=2 |za)J"},
    {R"J({% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %})J",
     R"J({})J", R"J(0134)J"},
    {R"J({% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }})J", R"J({})J",
     R"J(21)J"},
    {R"J({% macro m(a, b=2) %}[{{ a }}{{ b }}{{ varargs }}{{ kwargs }}]{% endmacro %}{{ m(1) }}{{ m(1, 3) }}{{ m(1, b=4) }}{{ m(1, 2, 3) }}{{ m(1, c=5) }})J",
     R"J({})J", R"J([12(){}][13(){}][14(){}][12(3,){}][12(){'c': 5}])J"},
    {R"J({% macro outer() %}<{{ caller() }}>{% endmacro %}{% call outer() %}inside{% endcall %})J",
     R"J({})J", R"J(<inside>)J"},
    {R"J({% filter upper %}hello {{ 'x' }}{% endfilter %}|{% set b %}  block  {% endset %}[{{ b }}]|{% set c | trim %}  block  {% endset %}[{{ c }}])J",
     R"J({})J", R"J(HELLO X|[  block  ]|[block])J"},
    {R"J({{ '  hi  '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ 'xxhixx'.strip('x') }}|{{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}|{{ 'abc'.upper() }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'hello'.find('l') }}|{{ 'hello'.count('l') }}|{{ '-'.join(['a', 'b']) }}|{{ 'abc'.startswith(('x', 'a')) }}|{{ 'abc'.endswith('bc') }})J",
     R"J({})J",
     R"J(hi|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|['a b', 'c']|hi|Hello World|Hello|ABC|bba|2|2|a-b|True|True)J"},
    {R"J({{ [3,1,2]|sort }}|{{ ['b','A','c']|sort }}|{{ [3,1,2]|sort(reverse=true) }}|{{ [1,2,3]|reverse|list }}|{{ 'abc'|reverse }}|{{ [1,2,2,3]|unique|list }}|{{ [1,2,3]|sum }}|{{ [1,5,3]|max }}|{{ [4,2,8]|min }}|{{ {'b': 1, 'a': 2}|dictsort }}|{{ [1,2,3,4,5]|batch(2)|list }})J",
     R"J({})J",
     R"J([1, 2, 3]|['A', 'b', 'c']|[3, 2, 1]|[3, 2, 1]|cba|[1, 2, 3]|6|5|2|[('a', 2), ('b', 1)]|[[1, 2], [3, 4], [5]])J"},
    {R"J({{ [{'n': 'a', 'x': 1}, {'n': 'b'}]|selectattr('x')|list }}|{{ [{'n': 'a', 'x': 1}, {'n': 'b'}]|rejectattr('x')|map(attribute='n')|list }}|{{ ['a', 1, 'b']|select('string')|list }}|{{ [1,2,3]|reject('equalto', 2)|list }}|{{ ['a','b']|map('upper')|join(',') }}|{{ [{'role':'user'},{'role':'x'}]|selectattr('role', 'equalto', 'user')|list|length }})J",
     R"J({})J", R"J([{'n': 'a', 'x': 1}]|['b']|['a', 'b']|[1, 3]|A,B|1)J"},
    {R"J({{ x|default('d') }}|{{ ''|default('d') }}|{{ ''|default('d', true) }}|{{ none|default('d') }}|{{ x|d('e') }}|{{ 'abc'|length }}|{{ [1,2]|count }}|{{ '3'|int + 1 }}|{{ 'x'|int }}|{{ '2.5'|float }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ 2.5|round }}|{{ 3|string ~ 'x' }}|{{ 'a b c'|wordcount }}|{{ [1,2]|first }}|{{ [1,2]|last }}|{{ 'ab'|first }})J",
     R"J({})J", R"J(d||d|None|e|3|2|4|0|2.5|3|2.57|2.0|3x|3|1|2|a)J"},
    {R"J({{ {'a': [1, 2.5, none, true, "é\n\"q\""], 'b': {}}|tojson }}|{{ {'a': [1, {'c': []}]}|tojson(indent=2) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ 'x'|tojson }}|{{ [1,2]|tojson(separators=(',', ':')) }})J",
     R"J({})J",
     R"J({"a": [1, 2.5, null, true, "é\n\"q\""], "b": {}}|{
  "a": [
    1,
    {
      "c": []
    }
  ]
}|{"a": 2, "b": 1}|"x"|[1,2])J"},
    {R"J({{ messages[::-1]|map(attribute='a')|list }}|{{ messages[1:] }}|{{ messages[-1].a }}|{{ 'hello'[1:3] }}|{{ 'hello'[::-1] }}|{{ 'hello'[-2:] }}|{{ [1,2,3,4][::2] }}|{{ 'héllo'[1] }}|{{ 'héllo'|length }})J",
     R"J({"messages": [{"a": 1}, {"a": 2}, {"a": 3}]})J",
     R"J([3, 2, 1]|[{'a': 2}, {'a': 3}]|3|el|olleh|lo|[1, 3]|é|5)J"},
    {R"J({{ x is defined }}|{{ x is undefined }}|{{ none is none }}|{{ 1 is number }}|{{ 1.5 is float }}|{{ 1 is integer }}|{{ true is boolean }}|{{ false is false }}|{{ 0 is false }}|{{ 'a' is string }}|{{ {} is mapping }}|{{ 'a' is iterable }}|{{ 1 is iterable }}|{{ [1] is sequence }}|{{ 4 is divisibleby 2 }}|{{ 3 is even }}|{{ 'a' is in 'abc' }}|{{ 'ab' is lower }}|{{ 1 is sameas 1 }}|{{ range is callable }})J", R"J({})J",
     R"J(False|True|True|True|True|True|True|True|False|True|True|True|False|True|True|False|True|True|True|True)J"},
    {R"J({{ 'a' in 'abc' }}|{{ 1 in [1,2] }}|{{ 'k' in {'k': 1} }}|{{ 3 not in [1] }}|{{ not true }}|{{ 1 < 2 < 3 }}|{{ 1 < 3 < 2 }}|{{ 1 == 1.0 }}|{{ [1] == [1] }}|{{ 'a' if false }}|{{ 'a' if false else 'b' }}|{{ 1 and 'x' }}|{{ 0 or 'y' }}|{{ none or [] }})J",
     R"J({})J", R"J(True|True|True|True|False|True|False|True|True||b|x|y|[])J"},
    {R"J({%- set ns = namespace(found=false, items=[]) %}{% for i in [1,2] %}{% set ns.found = true %}{% endfor %}{{ ns.found }}|{{ ns }})J",
     R"J({})J", R"J(True|<Namespace {'found': True, 'items': []}>)J"},
    {R"J(  {% if true %}
    x
  {% endif %}
  {{ 'y' }}
  {#- c -#}
  z {# comment #}
end)J",
     R"J({})J",
     R"J(    x
  yz end)J"},
    {R"J(a  {%- if true -%}  b  {%- endif -%}  c)J", R"J({})J", R"J(abc)J"},
    {R"J({% raw %}{{ not rendered }}{% endraw %}|{%+ if true %}x{% endif %})J", R"J({})J",
     R"J({{ not rendered }}|x)J"},
    {R"J({{ 'x'|indent(2) }}|{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\nb'|indent(first=true, width='>') }})J",
     R"J({})J",
     R"J(x|a
  b

  c|  a
  b|>a
>b)J"},
    {R"J({{ "{} and {x}".format(1, x=2) }}|{{ '%s' % 'x' if false else 'nofmt' }}|{{ 'abc'.upper().lower() }}|{{ [1,2,3]|join }}|{{ [1,2]|list|length }}|{{ dict(a=1) }}|{{ range(3)|list }}|{{ range(1, 10, 3)|list }})J",
     R"J({})J", R"J(1 and 2|nofmt|abc|123|2|{'a': 1}|[0, 1, 2]|[1, 4, 7])J"},
    {R"J({% set a, b = [1, 2] %}{{ a }}{{ b }}|{% with x = 5 %}{{ x }}{% endwith %}{{ x }})J",
     R"J({})J", R"J(12|5)J"},
    {R"J({{ "a\tb\\c'\u00e9" }}|{{ ["a'b", 'a"b', "a'\"b", "\n\x01é\u2028"] }}|{{ 'a' 'b' }})J",
     R"J({})J", R"J(a	b\c'é|["a'b", 'a"b', 'a\'"b', '\n\x01é\u2028']|ab)J"},
    {R"J({{ 1.5e-7 }}|{{ 123456789012345678.0 }}|{{ 1/3 }}|{{ 2.0 * 3 }}|{{ -0.0 }}|{{ 10**15 * 1.0 }}|{{ 10**16 * 1.0 }}|{{ 0.0001 }}|{{ 0.00001 }})J",
     R"J({})J",
     R"J(1.5e-07|1.2345678901234568e+17|0.3333333333333333|6.0|-0.0|1000000000000000.0|1e+16|0.0001|1e-05)J"},
    {R"J({% for m in messages %}{{ loop.cycle('odd', 'even') }}{% endfor %}|{% for a in [[1,2],[3,4]] %}{% for b in a %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index }};{% endfor %})J",
     R"J({"messages": [1, 2, 3]})J", R"J(oddevenodd|11221;13242;)J"},
    {R"J({{ m.content }}|{{ m.content is none }}|{{ m.content|string }}|{{ m.missing is defined }}|{{ m['role'] }})J",
     R"J({"m": {"role": "a", "content": null}})J", R"J(None|True|None|False|a)J"},
    {R"J({% for x in [1,2] %}
  {{ x }}
{% endfor %})J",
     R"J({})J",
     R"J(  1
  2
)J"},
    {R"J(<div>
    {% if true %}
        yes
    {% endif %}
</div>)J",
     R"J({})J",
     R"J(<div>
        yes
</div>)J"},
    {R"J({%- for x in [1,2] -%}
  {{ x }}
{%- endfor %}
after)J",
     R"J({})J", R"J(12after)J"},
    {R"J(a {# c #} b
  {# own line #}
c)J",
     R"J({})J",
     R"J(a  b
c)J"},
    {R"J(x
{% set y = 1 %}
{{ y }}
)J",
     R"J({})J",
     R"J(x
1)J"},
    {R"J({{ 'a' }}   
  {%- if true %}b{% endif +%}
 c)J",
     R"J({})J",
     R"J(ab
 c)J"},
    {R"J(  {% raw %}  {{ x }}  {% endraw %}
z)J",
     R"J({})J", R"J(  {{ x }}  z)J"},
    {R"J({% if x %}a{% elif y %}b{% else %}c{% endif %}|{% if not x %}n{% endif %})J",
     R"J({"y": 1})J", R"J(b|n)J"},
    {R"J({{ none.x }}|{{ none.x is defined }})J", R"J({})J", R"J(|False)J"},
    {R"J({{ {'a': 1}.b }}|{{ [1][5] }}|{{ 'ab'.zzz is defined }})J", R"J({})J", R"J(||False)J"},
    {R"J({% for a, b in [[1, 2], [3, 4]] %}{{ a }}-{{ b }} {% endfor %})J", R"J({})J",
     R"J(1-2 3-4 )J"},
    {R"J({{ [1,2,3]|map('string')|join('|') }}|{{ ['a','b']|join(', ') }}|{{ [{'a': 'x'}, {'a': 'y'}]|join(',', attribute='a') }})J",
     R"J({})J", R"J(1|2|3|a, b|x,y)J"},
    {R"J({{ 'Hello'|replace('l', 'L') }}|{{ 'a'|center(5) }}|{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ 'ab cd'|title }}|{{ 'ABC'|lower }}|{{ 'abc'|capitalize }}|{{ '<a&b>'|e }}|{{ 5|string|length }})J",
     R"J({})J", R"J(HeLLo|  a  |x|a|Ab Cd|abc|Abc|&lt;a&amp;b&gt;|1)J"},
    {R"J({% set x = [1] %}{% set _ = x.append(2) %}{{ x }})J", R"J({})J", R"J([1, 2])J"},
    {R"J({{ true + 1 }}|{{ 3 * 'ab' }}|{{ 'ab' * 2 }}|{{ [1] * 2 }}|{{ [1] + [2] }}|{{ 1 - 2.5 }}|{{ 9 % 4 }}|{{ 5.5 // 2 }}|{{ -(3) }}|{{ +3 }})J",
     R"J({})J", R"J(2|ababab|abab|[1, 1]|[1, 2]|-1.5|1|2.0|-3|3)J"},
    {R"J({{ 1 if true else 2 if false else 3 }}|{{ (1 if false) is defined }}|{{ 'x' ~ (1 if false) ~ 'y' }})J",
     R"J({})J", R"J(1|False|xy)J"},
    {R"J({% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }})J",
     R"J({})J", R"J(54321)J"},
    {R"J({%- macro r(x) -%}
  [{{ x }}]
{%- endmacro -%}
{{ r(1) }}
{{ r(2) }})J",
     R"J({})J",
     R"J([1]
[2])J"},
    {R"J({{ messages|selectattr("role", "equalto", "user")|list|length }}|{{ messages|map(attribute="role")|unique|list }}|{{ (messages|last).role }}|{{ messages[0] == messages[0] }}|{{ messages[0] == messages[1] }})J",
     R"J({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]})J",
     R"J(2|['user', 'assistant']|user|True|False)J"},
    {R"J({{ "\u00e9"|upper }}|{{ 'ß'|length }}|{{ '日本'|list }}|{{ '  \u3000x'.strip() }}|{{ 'a\u00a0b'.split() }})J",
     R"J({})J", R"J(É|1|['日', '本']|x|['a', 'b'])J"},
    {R"J({% set t = (1, 'a') %}{{ t }}|{{ t[1] }}|{{ t|list }}|{{ () }}|{{ {'a': (1, 2)} }}|{{ {'a': (1, 2)}|tojson }})J",
     R"J({})J", R"J((1, 'a')|a|[1, 'a']|()|{'a': (1, 2)}|{"a": [1, 2]})J"},
    {R"J({{ x is string }}|{{ x is mapping }}|{{ x is iterable }}|{{ x is sequence }}|{{ x is none }}|{{ x|length }}|{{ x|list }}|{{ x|join }}|{{ x|trim }}|{{ x|upper }})J",
     R"J({})J", R"J(False|False|True|True|False|0|[]|||)J"},
    {R"J({{ '{"a": 1}'|tojson }}|{{ 'ü'|tojson }}|{{ '\x7f\x1f'|tojson }}|{{ 1.0|tojson }}|{{ 10000000000000000.0|tojson }}|{{ 3|tojson }}|{{ none|tojson }}|{{ true|tojson }})J",
     R"J({})J", R"J("{\"a\": 1}"|"ü"|"\u001f"|1.0|1e+16|3|null|true)J"},
    {R"J({{ [1,[2,[3]]]|tojson(indent=2) }})J", R"J({})J",
     R"J([
  1,
  [
    2,
    [
      3
    ]
  ]
])J"},
    {R"J({{ {'a': {}, 'b': []}|tojson(indent=4) }}|{{ {}|tojson }}|{{ []|tojson(indent=2) }})J",
     R"J({})J",
     R"J({
    "a": {},
    "b": []
}|{}|[])J"},
    {R"J({%- for t in tools %}{{ t|tojson(indent=4) }}{% endfor %})J",
     R"J({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "string", "enum": ["a", "b"]}}, "required": ["x"]}}}]})J",
     R"J({
    "type": "function",
    "function": {
        "name": "f",
        "parameters": {
            "type": "object",
            "properties": {
                "x": {
                    "type": "string",
                    "enum": [
                        "a",
                        "b"
                    ]
                }
            },
            "required": [
                "x"
            ]
        }
    }
})J"},
    {R"J({% set x = 'out' %}{% for i in [1,2] %}{% if i == 1 %}{% set x = 'in' %}{% endif %}{{ x }}{% endfor %}{{ x }})J",
     R"J({})J", R"J(inoutout)J"},
    {R"J({% if true %}{% set y = 5 %}{% endif %}{{ y }})J", R"J({})J", R"J(5)J"},
    {R"J({% macro m() %}{% set z = 1 %}{{ z }}{% endmacro %}{{ m() }}{{ z is defined }})J",
     R"J({})J", R"J(1False)J"},
    {R"J({% macro lst(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(item) lst([1,2]) %}<{{ item }}>{% endcall %})J",
     R"J({})J", R"J(<1><2>)J"},
    {R"J({{ messages[0]['content'] is string }}|{{ messages[0].content[0].type }}|{% for c in messages[0].content %}{{ c['type'] }}{% endfor %})J",
     R"J({"messages": [{"content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]})J",
     R"J(False|image|imagetext)J"},
    {R"J({{ x|tojson|safe }}|{{ none|default('', true) }}|{{ (tools|length) > 0 }}|{{ '\n'.join(['a','b']) }}|{{ ['  a ', 'b  ']|map('trim')|list }})J",
     R"J({"x": {"a": [1, "b"]}, "tools": [1]})J",
     R"J({"a": [1, "b"]}||True|a
b|['a', 'b'])J"},
    {R"J({% for i in range(messages|length) %}{{ i }}{{ messages[i] }}{% endfor %}|{{ messages|length is even }})J",
     R"J({"messages": ["a", "b"]})J", R"J(0a1b|True)J"},
    {R"J({{ [{'type': 'a'}, {'type': 'c'}]|selectattr('type', 'in', ['a', 'b'])|list }}|{{ {'a': 2, 'b': 1}|dictsort(false, 'value') }})J",
     R"J({})J", R"J([{'type': 'a'}]|[('b', 1), ('a', 2)])J"},
    {R"J({{ "It's" }}|{{ '"q"' }}|{{ 'a\\nb' }}|{{ "tab\there" }}|{{ '\u263a' }}|{{ '\x41' }})J",
     R"J({})J", R"J(It's|"q"|a\nb|tab	here|☺|A)J"},
    {R"J({% set d = {'b': 1, 'a': 2} %}{% for k, v in d|dictsort %}{{ k }}{{ v }}{% endfor %}|{{ d|length }}|{{ d.a }}|{{ d['b'] }})J",
     R"J({})J", R"J(a2b1|2|2|1)J"},
    {R"J({{ 10 / 4 }}|{{ 10 / 5 }}|{{ 2 ** -1 }}|{{ 1e3 }}|{{ 3.0 }}|{{ 0.5 * 2 }}|{{ 7 % 2.5 }}|{{ -1 ** 2 }}|{{ 2 * 3 ** 2 }})J",
     R"J({})J", R"J(2.5|2.0|0.5|1000.0|3.0|1.0|2.0|1|18)J"},
    {R"J({{ 'a' < 'b' }}|{{ [1,2] < [1,3] }}|{{ 1 != 1.0 }}|{{ 'abc' == 'abc' }}|{{ none == none }}|{{ x == none }}|{{ {} == {} }}|{{ true == 1 }})J",
     R"J({})J", R"J(True|True|False|True|True|False|True|True)J"},
    {R"J({{ x.a.b is defined }})J", R"J({"x": {"a": null}})J", R"J(False)J"},
    {R"J({% for x in 'ab' %}{{ x }}{{ loop.index }}{% endfor %}|{% for x in {'k': 1} %}{{ x }}{% endfor %}|{% for x in none or [] %}{{ x }}{% else %}e{% endfor %})J",
     R"J({})J", R"J(a1b2|k|e)J"},
    {R"J({% set a = 1 %}{% set a = a + 1 %}{{ a }}|{% set l = [3, 1] %}{{ l|sort|first }}{{ l }}|{{ [1, 2, 3][1:] }}|{{ [1,2,3][-2:] }}|{{ [1,2,3][:-1] }}|{{ 'hello'[1:-1] }})J",
     R"J({})J", R"J(2|1[3, 1]|[2, 3]|[2, 3]|[1, 2]|ell)J"},
    {R"J({%- set ns = namespace(s='') -%}
{%- for m in messages -%}
  {%- set ns.s = ns.s ~ m -%}
{%- endfor -%}
[{{ ns.s }}])J",
     R"J({"messages": ["a", "b", "c"]})J", R"J([abc])J"},
    {R"J({{ 'x' if messages else 'y' }}|{{ 'a' ~ 'b' if true else 'c' }}|{{ not messages }}|{{ not none is none }}|{{ messages[0] if messages }})J",
     R"J({"messages": []})J", R"J(y|ab|True|False|)J"},
    {R"J({{ "%s" }}|{{ "{" }}|{{ "}" }}|{{ '{{' }}|{{ '}}' }}|{{ "{% raw %}" }})J", R"J({})J",
     R"J(%s|{|}|{{|}}|{% raw %})J"},
    {R"J({{ [1, 2]|join(', ') }}|{{ [1.5, true, none]|join('-') }}|{{ {'a': 1}|list }}|{{ ['x']|first|upper }}|{{ 'abc'|list }})J",
     R"J({})J", R"J(1, 2|1.5-True-None|['a']|X|['a', 'b', 'c'])J"},
    {R"J(a
{%- if true %}

b
{% endif %}
c)J",
     R"J({})J",
     R"J(a
b
c)J"},
    {R"J({% for x in [1, 2, 3] %}{{ x }}{% if not loop.last %}, {% endif %}{% endfor %})J",
     R"J({})J", R"J(1, 2, 3)J"},
    {R"J({{ range(3)|map('string')|join }}|{{ range(5)|select('odd')|list }}|{{ [0, 1, '', 'a', none]|select|list }}|{{ [1,2,3]|reject('odd')|list }}|{{ [{'a': 1}, {'a': 2}]|map(attribute='a')|sum }}
)J",
     R"J({})J", R"J(012|[1, 3]|[1, 'a']|[2]|3)J"},
};

TEST(Interpreter, MatchesJinja2) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.source);
    auto t = Template::parse(c.source);
    EXPECT_EQ(t->render(nlohmann::ordered_json::parse(c.vars)), c.expected);
  }
}

// transformers' AssistantTracker adds {% generation %}; it renders its body unchanged.
TEST(Interpreter, GenerationBlockIsTransparent) {
  auto t =
      Template::parse("{% for m in ms %}{% generation %}<{{ m }}>{% endgeneration %}{% endfor %}");
  EXPECT_EQ(t->render(nlohmann::json::parse(R"({"ms": ["a", "b"]})")), "<a><b>");
}

TEST(Interpreter, ParseOnceRenderMany) {
  auto t = Template::parse("{% for m in messages %}{{ m.content }};{% endfor %}");
  EXPECT_EQ(t->render(nlohmann::json::parse(R"({"messages":[{"content":"a"}]})")), "a;");
  EXPECT_EQ(t->render(nlohmann::json::parse(R"({"messages":[{"content":"b"},{"content":"c"}]})")),
            "b;c;");
}

TEST(Interpreter, StrftimeNowHonoursClockAndSourceDateEpoch) {
  auto t = Template::parse("{{ strftime_now('%Y-%m-%d %H:%M') }}|{{ strftime_now('%d %b %Y') }}");
  RenderOptions o;
  o.now_unix_seconds = 1736933400;
  EXPECT_EQ(t->render(nlohmann::json::object(), o), "2025-01-15 09:30|15 Jan 2025");
  setenv("SOURCE_DATE_EPOCH", "0", 1);
  EXPECT_EQ(t->render(nlohmann::json::object()), "1970-01-01 00:00|01 Jan 1970");
  unsetenv("SOURCE_DATE_EPOCH");
}

TEST(Interpreter, PythonFloatRepr) {
  EXPECT_EQ(python_float_repr(1.0), "1.0");
  EXPECT_EQ(python_float_repr(0.1), "0.1");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(123.456), "123.456");
  EXPECT_EQ(python_float_repr(-2.5e-5), "-2.5e-05");
  EXPECT_EQ(python_float_repr(1.0 / 0.0), "inf");
}

}  // namespace
}  // namespace runnel::tmpl
