// Restricted pickle machine (protocols 2-5) for torch state dicts. It implements only the
// opcodes such files use and never imports or calls anything: GLOBAL/REDUCE/BUILD/BINPERSID
// are delegated to PickleHooks, which decide what a callable means or refuse it. Objects live
// in an arena, so hostile reference cycles cannot leak or recurse.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace kiln::weights {

struct PickleValue {
    enum class Kind {
        NONE,
        BOOL,
        INT,
        BIG_INT,
        FLOAT,
        STRING,
        BYTES,
        TUPLE,
        LIST,
        DICT,
        GLOBAL,
        OBJECT
    };
    Kind kind = Kind::NONE;
    bool b = false;
    int64_t i = 0;  // INT; OBJECT: index into the hooks' own table
    double f = 0;
    std::string s;  // STRING, BYTES, BIG_INT (raw LE bytes), GLOBAL ("module.name"), OBJECT tag
    std::vector<PickleValue*> items;                          // TUPLE, LIST
    std::vector<std::pair<PickleValue*, PickleValue*>> dict;  // DICT, insertion order
};

class PickleArena {
  public:
    PickleValue* make(PickleValue::Kind kind);
    size_t size() const { return values_.size(); }

  private:
    std::deque<PickleValue> values_;
};

class PickleHooks {
  public:
    virtual ~PickleHooks() = default;
    // Throws unless module.name is on the allow list.
    virtual void check_global(const std::string& module, const std::string& name) = 0;
    virtual PickleValue* reduce(PickleArena& arena,
                                const PickleValue& callable,
                                const PickleValue& args) = 0;
    virtual PickleValue* persistent_load(PickleArena& arena, const PickleValue& pid) = 0;
    virtual void build(PickleValue& object, const PickleValue& state) = 0;
};

struct UnpickleResult {
    PickleValue* root = nullptr;
    size_t consumed = 0;  // bytes up to and including STOP
};

// Runs one pickle from the start of `bytes`. `where` names the file (and entry) in errors,
// which are core::Error(BAD_FILE) for malformed or refused input.
UnpickleResult unpickle(std::span<const uint8_t> bytes,
                        PickleArena& arena,
                        PickleHooks& hooks,
                        const std::string& where);

}  // namespace kiln::weights
