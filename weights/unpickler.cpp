#include "weights/unpickler.h"

#include <bit>
#include <cstring>
#include <unordered_map>

#include "core/error.h"
#include "weights/byte_io.h"

namespace kiln::weights {

PickleValue* PickleArena::make(PickleValue::Kind kind) {
    values_.emplace_back();
    values_.back().kind = kind;
    return &values_.back();
}

namespace {

using Kind = PickleValue::Kind;
using detail::load_le;

constexpr size_t kMaxStack = 1u << 20;
constexpr size_t kMaxMemo = 1u << 20;
constexpr size_t kMaxValues = 1u << 20;  // ~110 MB of objects at most
constexpr size_t kMaxGlobalLine = 256;
constexpr size_t kMaxBigInt = 1024;

class Machine {
  public:
    Machine(std::span<const uint8_t> bytes,
            PickleArena& arena,
            PickleHooks& hooks,
            const std::string& where)
        : in_(bytes), arena_(arena), hooks_(hooks), where_(where) {}

    UnpickleResult run();

  private:
    [[noreturn]] void bad(const std::string& what) const {
        throw core::Error(core::ErrorCode::BAD_FILE,
                          where_ + ": pickle at byte " + std::to_string(op_pos_) + ": " + what);
    }
    const uint8_t* take(uint64_t n) {
        if (n > in_.size() - pos_)
            bad("truncated (needs " + std::to_string(n) + " more bytes)");
        const uint8_t* p = in_.data() + pos_;
        pos_ += n;
        return p;
    }
    template <typename T>
    T take_le() {
        return load_le<T>(take(sizeof(T)));
    }
    std::string take_line() {
        for (size_t i = pos_; i < in_.size() && i - pos_ <= kMaxGlobalLine; ++i) {
            if (in_[i] == '\n') {
                std::string line(reinterpret_cast<const char*>(in_.data() + pos_), i - pos_);
                pos_ = i + 1;
                return line;
            }
        }
        bad("unterminated or overlong GLOBAL name");
    }
    PickleValue* make(Kind kind) {
        if (arena_.size() >= kMaxValues)
            bad("too many objects");
        return arena_.make(kind);
    }
    void push(PickleValue* v) {
        if (stack_.size() >= kMaxStack)
            bad("stack too deep");
        stack_.push_back(v);
    }
    PickleValue* pop() {
        if (stack_.size() <= floor())
            bad("stack underflow");
        PickleValue* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    PickleValue* top() {
        if (stack_.size() <= floor())
            bad("stack underflow");
        return stack_.back();
    }
    size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
    size_t pop_mark() {
        if (marks_.empty())
            bad("no MARK on the stack");
        const size_t m = marks_.back();
        marks_.pop_back();
        return m;
    }
    void push_string(Kind kind, uint64_t len) {
        const uint8_t* p = take(len);
        PickleValue* v = make(kind);
        v->s.assign(reinterpret_cast<const char*>(p), len);
        push(v);
    }
    void push_int(int64_t i) {
        PickleValue* v = make(Kind::INT);
        v->i = i;
        push(v);
    }
    void push_long(uint64_t len) {
        if (len > kMaxBigInt)
            bad("integer of " + std::to_string(len) + " bytes");
        const uint8_t* p = take(len);
        if (len > 8) {
            push_string(Kind::BIG_INT, 0);
            stack_.back()->s.assign(reinterpret_cast<const char*>(p), len);
            return;
        }
        uint64_t u = 0;
        for (size_t k = 0; k < len; ++k)
            u |= static_cast<uint64_t>(p[k]) << (8 * k);
        if (len > 0 && len < 8 && (p[len - 1] & 0x80))
            u |= ~uint64_t{0} << (8 * len);  // sign-extend
        push_int(static_cast<int64_t>(u));
    }
    void memo_put(uint64_t index) {
        if (memo_.size() >= kMaxMemo && !memo_.count(index))
            bad("memo too large");
        memo_[index] = top();
    }
    void memo_get(uint64_t index) {
        auto it = memo_.find(index);
        if (it == memo_.end())
            bad("memo key " + std::to_string(index) + " missing");
        push(it->second);
    }
    void tuple_of(size_t n) {
        if (stack_.size() - floor() < n)
            bad("stack underflow");
        PickleValue* t = make(Kind::TUPLE);
        t->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(t);
    }
    void set_items(size_t from) {
        if (from == 0 || (stack_.size() - from) % 2 != 0)
            bad("SETITEMS with odd item count");
        PickleValue* d = stack_[from - 1];
        if (d->kind != Kind::DICT)
            bad("SETITEM(S) on a non-dict");
        for (size_t k = from; k < stack_.size(); k += 2)
            d->dict.emplace_back(stack_[k], stack_[k + 1]);
        stack_.resize(from);
    }
    void append_items(size_t from) {
        if (from == 0)
            bad("APPEND(S) without a list");
        PickleValue* l = stack_[from - 1];
        if (l->kind != Kind::LIST)
            bad("APPEND(S) on a non-list");
        l->items.insert(l->items.end(), stack_.begin() + static_cast<std::ptrdiff_t>(from),
                        stack_.end());
        stack_.resize(from);
    }
    void global(const std::string& module, const std::string& name) {
        hooks_.check_global(module, name);
        PickleValue* g = make(Kind::GLOBAL);
        g->s = module + "." + name;
        push(g);
    }
    bool step();

    std::span<const uint8_t> in_;
    PickleArena& arena_;
    PickleHooks& hooks_;
    const std::string& where_;
    size_t pos_ = 0;
    size_t op_pos_ = 0;
    std::vector<PickleValue*> stack_;
    std::vector<size_t> marks_;  // stack heights at each MARK
    std::unordered_map<uint64_t, PickleValue*> memo_;
    PickleValue* result_ = nullptr;
};

// Executes one opcode; false after STOP.
bool Machine::step() {
    op_pos_ = pos_;
    const uint8_t op = *take(1);
    switch (op) {
        case 0x80: {  // PROTO
            const uint8_t proto = *take(1);
            if (proto < 2 || proto > 5)
                bad("pickle protocol " + std::to_string(proto) + " (2-5 supported)");
            return true;
        }
        case 0x95:  // FRAME: a length hint only
            take(8);
            return true;
        case '.':  // STOP
            result_ = pop();
            return false;
        case '(':  // MARK
            if (marks_.size() >= kMaxStack)
                bad("too many MARKs");
            marks_.push_back(stack_.size());
            return true;
        case '0':  // POP
            if (stack_.size() == floor() && !marks_.empty()) {
                pop_mark();
            } else {
                pop();
            }
            return true;
        case '1':  // POP_MARK
            stack_.resize(pop_mark());
            return true;
        case '}':
            push(make(Kind::DICT));
            return true;
        case ']':
            push(make(Kind::LIST));
            return true;
        case ')':
            push(make(Kind::TUPLE));
            return true;
        case 'N':
            push(make(Kind::NONE));
            return true;
        case 0x88:
        case 0x89: {  // NEWTRUE, NEWFALSE
            PickleValue* v = make(Kind::BOOL);
            v->b = op == 0x88;
            push(v);
            return true;
        }
        case 'X':  // BINUNICODE
            push_string(Kind::STRING, take_le<uint32_t>());
            return true;
        case 0x8c:  // SHORT_BINUNICODE
            push_string(Kind::STRING, *take(1));
            return true;
        case 0x8d:  // BINUNICODE8
            push_string(Kind::STRING, take_le<uint64_t>());
            return true;
        case 'T': {  // BINSTRING
            const int32_t len = take_le<int32_t>();
            if (len < 0)
                bad("negative string length");
            push_string(Kind::STRING, static_cast<uint64_t>(len));
            return true;
        }
        case 'U':  // SHORT_BINSTRING
            push_string(Kind::STRING, *take(1));
            return true;
        case 'B':  // BINBYTES
            push_string(Kind::BYTES, take_le<uint32_t>());
            return true;
        case 'C':  // SHORT_BINBYTES
            push_string(Kind::BYTES, *take(1));
            return true;
        case 0x8e:  // BINBYTES8
            push_string(Kind::BYTES, take_le<uint64_t>());
            return true;
        case 'J':
            push_int(take_le<int32_t>());
            return true;
        case 'K':
            push_int(*take(1));
            return true;
        case 'M':
            push_int(take_le<uint16_t>());
            return true;
        case 0x8a:  // LONG1
            push_long(*take(1));
            return true;
        case 0x8b: {  // LONG4
            const int32_t len = take_le<int32_t>();
            if (len < 0)
                bad("negative integer length");
            push_long(static_cast<uint64_t>(len));
            return true;
        }
        case 'G': {  // BINFLOAT, big-endian
            PickleValue* v = make(Kind::FLOAT);
            v->f = std::bit_cast<double>(__builtin_bswap64(take_le<uint64_t>()));
            push(v);
            return true;
        }
        case 't': {  // TUPLE
            const size_t m = pop_mark();
            PickleValue* t = make(Kind::TUPLE);
            t->items.assign(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
            stack_.resize(m);
            push(t);
            return true;
        }
        case 0x85:
        case 0x86:
        case 0x87:  // TUPLE1..3
            tuple_of(static_cast<size_t>(op - 0x84));
            return true;
        case 's':  // SETITEM
            if (stack_.size() - floor() < 3)
                bad("stack underflow");
            set_items(stack_.size() - 2);
            return true;
        case 'u':  // SETITEMS
            set_items(pop_mark());
            return true;
        case 'a':  // APPEND
            if (stack_.size() - floor() < 2)
                bad("stack underflow");
            append_items(stack_.size() - 1);
            return true;
        case 'e':  // APPENDS
            append_items(pop_mark());
            return true;
        case 'q':  // BINPUT
            memo_put(*take(1));
            return true;
        case 'r':  // LONG_BINPUT
            memo_put(take_le<uint32_t>());
            return true;
        case 0x94:  // MEMOIZE
            memo_put(memo_.size());
            return true;
        case 'h':  // BINGET
            memo_get(*take(1));
            return true;
        case 'j':  // LONG_BINGET
            memo_get(take_le<uint32_t>());
            return true;
        case 'c': {  // GLOBAL "module\nname\n"
            const std::string module = take_line();
            const std::string name = take_line();
            global(module, name);
            return true;
        }
        case 0x93: {  // STACK_GLOBAL
            PickleValue* name = pop();
            PickleValue* module = pop();
            if (name->kind != Kind::STRING || module->kind != Kind::STRING)
                bad("STACK_GLOBAL needs two strings");
            global(module->s, name->s);
            return true;
        }
        case 'R': {  // REDUCE
            PickleValue* args = pop();
            PickleValue* callable = pop();
            if (callable->kind != Kind::GLOBAL || args->kind != Kind::TUPLE)
                bad("REDUCE needs a global and a tuple");
            push(hooks_.reduce(arena_, *callable, *args));
            return true;
        }
        case 'b': {  // BUILD
            PickleValue* state = pop();
            hooks_.build(*top(), *state);
            return true;
        }
        case 'Q': {  // BINPERSID
            PickleValue* pid = pop();
            push(hooks_.persistent_load(arena_, *pid));
            return true;
        }
        default: {
            static const char* hex = "0123456789abcdef";
            bad(std::string("unsupported opcode 0x") + hex[op >> 4] + hex[op & 15]);
        }
    }
}

UnpickleResult Machine::run() {
    while (step()) {
    }
    return {result_, pos_};
}

}  // namespace

UnpickleResult unpickle(std::span<const uint8_t> bytes,
                        PickleArena& arena,
                        PickleHooks& hooks,
                        const std::string& where) {
    Machine m(bytes, arena, hooks, where);
    return m.run();
}

}  // namespace kiln::weights
