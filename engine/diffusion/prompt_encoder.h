// Turns a prompt into the UNet's context tokens (encoder_hidden_states). The models trained
// here are class-conditional: their "text encoder" is a learned table of token rows per class
// name. A CLIP text encoder for full SD checkpoints implements the same interface.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::engine::diffusion {

class PromptEncoder {
  public:
    virtual ~PromptEncoder() = default;
    virtual int tokens() const = 0;  // rows of one encoding
    virtual int width() const = 0;   // features per row (the UNet's cross_attention_dim)
    // [tokens, width]; the empty prompt gives the unconditional encoding (for guidance).
    // core::Error(INVALID_ARGUMENT) naming what is accepted when the prompt cannot be encoded.
    virtual std::vector<float> encode(const std::string& prompt) const = 0;
    // Prompts the encoder knows, when it knows a closed set (class names); else empty.
    virtual std::vector<std::string> vocabulary() const = 0;
};

// A class table: class_embeddings.safetensors holding "class_embeddings" [classes, tokens,
// width] and metadata "class_names" (a JSON list, one per row) and "empty_index" (the row of
// the empty prompt). A prompt matches a class name ignoring case and surrounding spaces.
class ClassTableEncoder final : public PromptEncoder {
  public:
    explicit ClassTableEncoder(const std::filesystem::path& file);
    int tokens() const override { return tokens_; }
    int width() const override { return width_; }
    std::vector<float> encode(const std::string& prompt) const override;
    std::vector<std::string> vocabulary() const override;

  private:
    std::vector<std::string> names_;  // lower case; names_[empty_] is the empty prompt's row
    std::vector<float> table_;
    int empty_ = 0;
    int tokens_ = 0;
    int width_ = 0;
};

}  // namespace kiln::engine::diffusion
