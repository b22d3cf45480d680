// Round trips of the runner protocol (runner/protocol.h).
#include "runner/protocol.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace runnel::runner {
namespace {

TEST(Protocol, GenerateRoundTrip) {
  GenerateRequest r;
  r.id = "7";
  r.chat = true;
  r.messages = {{"user", "hi", "", "", "", "", 0},
                {"assistant", "", "hmm", "", "", R"([{"function":{"name":"f"}}])", 0},
                {"tool", "42", "", "f", "call_1", "", 0}};
  r.system = "sys";
  r.options_json = R"({"temperature":0.5})";
  r.format = "json";
  r.tools_json = R"([{"type":"function"}])";
  r.think = true;
  r.logprobs = true;
  r.top_logprobs = 2;
  std::string line = encode_generate(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(decode_op(line), "generate");
  GenerateRequest d = decode_generate(line);
  EXPECT_EQ(d.id, "7");
  EXPECT_TRUE(d.chat);
  ASSERT_EQ(d.messages.size(), 3u);
  EXPECT_EQ(d.messages[1].thinking, "hmm");
  EXPECT_EQ(d.messages[1].tool_calls_json, R"([{"function":{"name":"f"}}])");
  EXPECT_EQ(d.messages[2].tool_call_id, "call_1");
  EXPECT_EQ(d.messages[2].name, "f");
  EXPECT_EQ(d.system, "sys");
  EXPECT_EQ(d.options_json, R"({"temperature":0.5})");
  EXPECT_EQ(d.format, "json");
  EXPECT_EQ(d.think, std::optional<bool>(true));
  EXPECT_TRUE(d.logprobs);
  EXPECT_EQ(d.top_logprobs, 2);
}

TEST(Protocol, Frames) {
  Chunk c{"he said \"hi\"\n", "", "", R"([{"logprob":-1,"token":"a"}])"};
  Frame f = decode_frame(encode_chunk(c));
  ASSERT_EQ(f.type, Frame::Type::kChunk);
  EXPECT_EQ(f.chunk.text, c.text);
  EXPECT_EQ(f.chunk.logprobs_json, c.logprobs_json);

  GenerateResult r;
  r.done_reason = "length";
  r.prompt_eval_count = 11;
  r.cached_tokens = 5;
  r.eval_duration = 123456789012;
  f = decode_frame(encode_done(r));
  ASSERT_EQ(f.type, Frame::Type::kDone);
  EXPECT_EQ(f.result.done_reason, "length");
  EXPECT_EQ(f.result.prompt_eval_count, 11);
  EXPECT_EQ(f.result.cached_tokens, 5);
  EXPECT_EQ(f.result.eval_duration, 123456789012);

  f = decode_frame(encode_error("[runner] too long", 400));
  ASSERT_EQ(f.type, Frame::Type::kError);
  EXPECT_EQ(f.status, 400);
  EXPECT_EQ(f.error, "[runner] too long");
  EXPECT_EQ(decode_frame(encode_accepted()).type, Frame::Type::kAccepted);
}

TEST(Protocol, Results) {
  ModelInfo i;
  i.architecture = "llama";
  i.parameter_count = 260000;
  i.context_length = 512;
  i.chat_template = "{{ x }}";
  i.model_info_json = R"({"llama.block_count":5})";
  ModelInfo d = decode_info(encode_info(i));
  EXPECT_EQ(d.architecture, "llama");
  EXPECT_EQ(d.parameter_count, 260000);
  EXPECT_EQ(d.context_length, 512);
  EXPECT_EQ(d.chat_template, "{{ x }}");
  EXPECT_EQ(d.model_info_json, R"({"llama.block_count":5})");
  EXPECT_EQ(decode_tokens(encode_tokens({1, 2, 3})), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(decode_text(encode_text("héllo")), "héllo");
  RunnerStats s = decode_stats(encode_stats({4, 2, 1}));
  EXPECT_EQ(s.requests_total, 4);
  EXPECT_EQ(s.cancelled_total, 2);
  EXPECT_EQ(s.active, 1);
  auto [text, add] = decode_tokenize(encode_tokenize("a b", false));
  EXPECT_EQ(text, "a b");
  EXPECT_FALSE(add);
  auto [ids, skip] = decode_detokenize(encode_detokenize({5, 6}, true));
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 6}));
  EXPECT_TRUE(skip);
}

TEST(Protocol, Malformed) {
  EXPECT_THROW(decode_frame("not json"), Error);
  EXPECT_THROW(decode_frame(R"({"type":"nope"})"), Error);
  EXPECT_THROW(decode_generate(R"({"op":"generate","messages":3})"), Error);
  EXPECT_THROW(decode_generate(R"({"op":"generate","prompt":5})"), Error);
  EXPECT_THROW(decode_detokenize(R"({"op":"detokenize","ids":"x"})"), Error);
}

}  // namespace
}  // namespace runnel::runner
