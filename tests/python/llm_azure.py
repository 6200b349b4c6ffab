"""Conformance of the faultline fake LLM's Azure OpenAI paths with the official `openai` SDK's
`AzureOpenAI` client (deployments and api-version, the `api-key` header) and with `OpenAI`
pointed at the `/openai/v1/` form: Azure's headers, its gateway error shape as the SDK's
exception classes, and the SDK's retry timed from the journal.

Usage: llm_azure.py BASE_URL CONTROL_URL API_KEY (as llm_sdk_conformance.py). Run by
tests/fake_llm_sdk.rs.
"""

import sys

import openai

from sdk_harness import attempts, check, connect, fault, raises, run_checks

BASE, CONTROL, KEY = sys.argv[1:4]
connect(CONTROL)
DEPLOYMENT = "gpt4o-prod"


def azure(**options):
    options.setdefault("max_retries", 0)
    return openai.AzureOpenAI(azure_endpoint=BASE, api_key=KEY, api_version="2024-10-21", **options)


def ask(text):
    return [{"role": "user", "content": text}]


@check
def a_deployment_answers_with_azures_headers():
    fault()
    raw = azure().chat.completions.with_raw_response.create(model=DEPLOYMENT, messages=ask("hello there"))
    assert raw.headers["apim-request-id"] and raw.headers["x-ms-region"], raw.headers
    assert raw.headers["x-ms-deployment-name"] == DEPLOYMENT
    completion = raw.parse()
    assert completion.choices[0].message.content
    stream = azure().chat.completions.create(
        model=DEPLOYMENT, messages=ask("hello there"), stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == completion.choices[0].message.content
    embedded = azure().embeddings.create(model="embed-prod", input="hello")
    assert len(embedded.data[0].embedding) > 0


@check
def the_v1_form_serves_the_openai_client():
    fault()
    client = openai.OpenAI(base_url=BASE + "/openai/v1/", api_key=KEY, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=ask("hi")).choices[0].message.content
    assert client.responses.create(model="gpt-4o-mini", input="hi").output_text


@check
def errors_answer_in_azures_shape_as_sdk_exceptions():
    fault({"kind": "status", "code": 429, "retry_after": "2s"})
    error = raises(openai.RateLimitError, lambda: azure().chat.completions.create(model=DEPLOYMENT, messages=ask("hi")))
    assert error.body["code"] == "429" and "retry after 2 seconds" in error.body["message"], error.body
    assert error.response.headers["retry-after"] == "2"
    fault({"kind": "status", "code": 503})
    raises(openai.InternalServerError, lambda: azure().chat.completions.create(model=DEPLOYMENT, messages=ask("hi")))
    fault()
    wrong = openai.AzureOpenAI(azure_endpoint=BASE, api_key="sk-wrong", api_version="2024-10-21", max_retries=0)
    error = raises(openai.AuthenticationError, lambda: wrong.chat.completions.create(model=DEPLOYMENT, messages=ask("hi")))
    assert error.body["code"] == "401"


@check
def the_sdk_retries_an_azure_429_after_its_retry_after():
    nonce = "fl-0000e001"
    fault({"kind": "status", "code": 429, "retry_after": "600ms", "first_attempts": 1})
    completion = azure(max_retries=2).chat.completions.create(model=DEPLOYMENT, messages=ask(f"hi [{nonce}]"))
    assert completion.choices[0].message.content
    seen = attempts(nonce)
    assert [a["status"] for a in seen] == [429, 200], seen
    assert [a.get("retry_count") for a in seen] == [0, 1], seen
    gap = seen[1]["at_ms"] - seen[0]["at_ms"]
    assert 550 <= gap <= 2500, f"gap {gap} ms"


if __name__ == "__main__":
    run_checks(f"openai {openai.__version__} (Azure OpenAI)")
