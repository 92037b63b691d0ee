#!/usr/bin/env python3
"""What HF transformers' `apply_chat_template` renders for each template and conversation in
tests/fixtures/chat_templates.json: the oracle for trtforge's chat templates (tests/byo.rs).

    python3 tests/py/chat_golden.py FIXTURE_JSON OUT_JSON

OUT_JSON is a list of {template, conversation, add_generation_prompt, text} or, where the template
raised (`raise_exception`), {..., error}. The templates named in `tool_templates` are rendered a
second time with `tools=spec["tools"]` (those cases have "tools": true). Needs transformers (no
torch) and tokenizers.
"""
import json
import sys

from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast


def main() -> None:
    spec = json.load(open(sys.argv[1]))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.BPE()), bos_token=spec["bos_token"], eos_token=spec["eos_token"]
    )
    out = []
    runs = [(name, None) for name in spec["templates"]]
    runs += [(name, spec["tools"]) for name in spec.get("tool_templates", [])]
    for name, tools in runs:
        template = spec["templates"][name]
        for i, conv in enumerate(spec["conversations"]):
            for gen in (False, True):
                case = {"template": name, "conversation": i, "add_generation_prompt": gen}
                if tools is not None:
                    case["tools"] = True
                try:
                    case["text"] = tok.apply_chat_template(
                        conv, tools=tools, chat_template=template, tokenize=False, add_generation_prompt=gen
                    )
                except Exception as e:  # jinja2 TemplateError from raise_exception
                    case["error"] = str(e)
                out.append(case)
    json.dump(out, open(sys.argv[2], "w"), ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
