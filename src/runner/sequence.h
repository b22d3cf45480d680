// One request's state inside the engine: its prompt, its prefix-cache sequence (KV blocks),
// sampler, stop matcher, streaming decoder and timings. Owned by generate()'s stack frame; the
// engine thread works on it between admission and finish, then wakes the waiting generate() call.
#pragma once

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "array/ops.h"
#include "cache/prefix_cache.h"
#include "runner/engine_api.h"
#include "sample/matcher.h"
#include "sample/sampler.h"
#include "sample/stop.h"
#include "template/chat.h"
#include "tokenizer/tokenizer.h"

namespace runnel::runner {

struct Sequence {
  const GenerateRequest* request = nullptr;
  ChunkSink* sink = nullptr;
  std::vector<int32_t> prompt;
  sample::SamplingOptions options;
  int64_t n_ctx = 0;
  std::vector<int32_t> eos;

  // The KV of prompt + fed tokens, in the prefix cache's blocks; started at admission.
  cache::Sequence kv;
  bool admitted = false;
  // Per layer, the block pointers of the current step (copied from kv after its append; valid
  // until the step's evaluation is joined, as nothing appends or evicts before that).
  std::vector<array::PagedKvBlocks> paged;
  std::unique_ptr<sample::Sampler> sampler;
  std::unique_ptr<sample::GrammarMatcher> grammar;
  sample::TokenMask mask;
  std::unique_ptr<sample::StopMatcher> stops;
  std::unique_ptr<tokenizer::StreamDecoder> decoder;

  size_t n_prefilled = 0;        // prompt tokens sent to the model
  int64_t n_generated = 0;       // tokens sampled
  int32_t next_token = -1;       // sampled, to be fed at the next step
  bool feed_next = false;        // next_token goes into the next batch
  int64_t row = -1;              // this sequence's logits row in the current batch, or -1
  std::vector<int32_t> to_emit;  // sampled tokens whose text is not streamed yet
  std::vector<sample::SampleResult> to_emit_logprobs;
  // With tools: the output is held until the end, then split into content and tool calls.
  tmpl::ToolCallFormat tool_format = tmpl::ToolCallFormat::kNone;
  std::string held_text;
  std::string finish_reason;  // set when the sequence must end after its pending output

  int64_t t_queued = 0, t_admitted = 0, t_first_token = 0;

  // Completion, signalled to the waiting generate() call.
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  GenerateResult result;
  std::exception_ptr error;
};

}  // namespace runnel::runner
