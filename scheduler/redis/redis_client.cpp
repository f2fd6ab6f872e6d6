#include "scheduler/redis/redis_client.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <optional>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace kiln::scheduler {

namespace {

core::Error url_error(const std::string& url, const std::string& problem) {
    return core::Error(
        core::ErrorCode::INVALID_ARGUMENT,
        "redis URL \"" + url + "\": " + problem + " (expected redis://HOST[:PORT][/DB])");
}

// Digits only, within [low, high]; the length check keeps the sum from overflowing.
std::optional<int> parse_bounded(std::string_view text, int low, int high) {
    if (text.empty() || text.size() > 5)
        return std::nullopt;
    int value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9')
            return std::nullopt;
        value = value * 10 + (c - '0');
    }
    if (value < low || value > high)
        return std::nullopt;
    return value;
}

bool is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

const char* kind_name(RedisReply::Kind kind) {
    switch (kind) {
        case RedisReply::Kind::NIL:
            return "nil";
        case RedisReply::Kind::INTEGER:
            return "integer";
        case RedisReply::Kind::STRING:
            return "string";
        case RedisReply::Kind::STATUS:
            return "status";
        case RedisReply::Kind::ARRAY:
            return "array";
    }
    return "unknown";
}

struct ReplyDeleter {
    void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// hiredis writes with write(2), so a write to a connection that the server has reset raises
// SIGPIPE, which ends the process. Blocked around each command; one raised meanwhile is taken.
class SigpipeBlocked {
  public:
    SigpipeBlocked() {
        sigemptyset(&sigpipe_);
        sigaddset(&sigpipe_, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &sigpipe_, &previous_);
    }
    ~SigpipeBlocked() {
        sigset_t pending;
        sigpending(&pending);
        if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
            const timespec no_wait{0, 0};
            sigtimedwait(&sigpipe_, nullptr, &no_wait);
        }
        pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    }
    SigpipeBlocked(const SigpipeBlocked&) = delete;
    SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

  private:
    sigset_t sigpipe_;
    sigset_t previous_;
    bool was_pending_ = false;
};

ReplyPtr send_raw(redisContext* context, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const std::string& arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    const SigpipeBlocked blocked;
    return ReplyPtr(static_cast<redisReply*>(
        redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data())));
}

RedisReply convert(const redisReply& raw) {
    RedisReply reply;
    switch (raw.type) {
        case REDIS_REPLY_NIL:
            break;
        case REDIS_REPLY_INTEGER:
            reply.kind = RedisReply::Kind::INTEGER;
            reply.integer = raw.integer;
            break;
        case REDIS_REPLY_STRING:
            reply.kind = RedisReply::Kind::STRING;
            reply.str.assign(raw.str, raw.len);
            break;
        case REDIS_REPLY_STATUS:
            reply.kind = RedisReply::Kind::STATUS;
            reply.str.assign(raw.str, raw.len);
            break;
        case REDIS_REPLY_ARRAY:
            reply.kind = RedisReply::Kind::ARRAY;
            reply.elements.reserve(raw.elements);
            for (size_t i = 0; i < raw.elements; ++i)
                reply.elements.push_back(convert(*raw.element[i]));
            break;
        case REDIS_REPLY_ERROR:
            throw core::Error(core::ErrorCode::INTERNAL,
                              "redis error inside a reply: " + std::string(raw.str, raw.len));
        default:
            throw core::Error(core::ErrorCode::INTERNAL,
                              "redis reply of unknown type " + std::to_string(raw.type));
    }
    return reply;
}

// A restarted server answers LOADING until it has read its data back (the AOF): it is up but
// cannot serve yet, which callers handle as they handle one they cannot reach.
bool is_loading(const char* text, size_t length) {
    return std::string_view(text, length).starts_with("LOADING");
}

timeval to_timeval(std::chrono::milliseconds timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    return tv;
}

}  // namespace

RedisAddress parse_redis_url(const std::string& url) {
    constexpr std::string_view scheme = "redis://";
    if (!url.starts_with(scheme))
        throw url_error(url, "the scheme must be redis://");
    const std::string_view rest = std::string_view(url).substr(scheme.size());
    const size_t slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    const size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (host.empty())
        throw url_error(url, "the host is empty");
    for (const char c : host) {
        if (!is_host_char(c))
            throw url_error(url, "the host \"" + std::string(host) +
                                     "\" may hold only letters, digits, '.', '-' and '_'");
    }
    RedisAddress address;
    address.host = host;
    if (colon != std::string_view::npos) {
        const std::string_view port_text = authority.substr(colon + 1);
        const std::optional<int> port = parse_bounded(port_text, 1, 65535);
        if (!port)
            throw url_error(
                url, "the port \"" + std::string(port_text) + "\" is not a number in 1..65535");
        address.port = *port;
    }
    if (slash != std::string_view::npos) {
        const std::string_view db_text = rest.substr(slash + 1);
        const std::optional<int> db = parse_bounded(db_text, 0, 15);
        if (!db)
            throw url_error(
                url, "the database \"" + std::string(db_text) + "\" is not a number in 0..15");
        address.db = *db;
    }
    return address;
}

int64_t RedisReply::as_integer() const {
    if (kind != Kind::INTEGER)
        throw core::Error(core::ErrorCode::INTERNAL,
                          std::string("redis reply: expected an integer, got ") + kind_name(kind));
    return integer;
}

const std::string& RedisReply::as_string() const {
    if (kind != Kind::STRING && kind != Kind::STATUS)
        throw core::Error(core::ErrorCode::INTERNAL,
                          std::string("redis reply: expected a string, got ") + kind_name(kind));
    return str;
}

void RedisConnection::ContextDeleter::operator()(redisContext* context) const {
    redisFree(context);
}

RedisConnection::RedisConnection(RedisAddress address, std::chrono::milliseconds timeout)
    : address_(std::move(address)), timeout_(timeout) {
    connect();
}

RedisConnection::~RedisConnection() = default;

std::string RedisConnection::where() const {
    return address_.host + ":" + std::to_string(address_.port);
}

void RedisConnection::connect() {
    context_.reset();
    const timeval tv = to_timeval(timeout_);
    std::unique_ptr<redisContext, ContextDeleter> context(
        redisConnectWithTimeout(address_.host.c_str(), address_.port, tv));
    const std::string unreachable = "redis unreachable at " + where() + ": ";
    if (!context)
        throw core::Error(core::ErrorCode::IO, unreachable + "cannot allocate a connection");
    if (context->err)
        throw core::Error(core::ErrorCode::UNAVAILABLE, unreachable + context->errstr);
    if (redisSetTimeout(context.get(), tv) != REDIS_OK)
        throw core::Error(core::ErrorCode::IO, unreachable + "cannot set the command timeout");
    if (address_.db != 0) {
        // Sent here rather than through send(), which reconnects by calling this function.
        const ReplyPtr reply = send_raw(context.get(), {"SELECT", std::to_string(address_.db)});
        if (!reply)
            throw core::Error(core::ErrorCode::UNAVAILABLE, unreachable + context->errstr);
        if (reply->type == REDIS_REPLY_ERROR && is_loading(reply->str, reply->len))
            throw core::Error(core::ErrorCode::UNAVAILABLE,
                              unreachable + std::string(reply->str, reply->len));
        if (reply->type == REDIS_REPLY_ERROR)
            throw core::Error(core::ErrorCode::INTERNAL, "redis at " + where() +
                                                             " refused SELECT " +
                                                             std::to_string(address_.db) + ": " +
                                                             std::string(reply->str, reply->len));
    }
    context_ = std::move(context);
}

RedisConnection::Outcome RedisConnection::send(const std::vector<std::string>& args) {
    for (int attempt = 0;; ++attempt) {
        if (!context_)
            connect();
        const ReplyPtr raw = send_raw(context_.get(), args);
        if (raw) {
            if (raw->type == REDIS_REPLY_ERROR && is_loading(raw->str, raw->len))
                throw core::Error(core::ErrorCode::UNAVAILABLE,
                                  "redis at " + where() +
                                      " is not serving yet: " + std::string(raw->str, raw->len));
            Outcome outcome;
            if (raw->type == REDIS_REPLY_ERROR)
                outcome.error = std::string(raw->str, raw->len);
            else
                outcome.reply = convert(*raw);
            return outcome;
        }
        const int error = context_->err;
        const std::string message = context_->errstr;
        context_.reset();  // hiredis cannot use a context again after an error
        const bool lost = error == REDIS_ERR_IO || error == REDIS_ERR_EOF;
        if (!lost)
            throw core::Error(core::ErrorCode::IO,
                              "redis at " + where() + " failed " + args.at(0) + ": " + message);
        if (attempt > 0)
            throw core::Error(core::ErrorCode::UNAVAILABLE,
                              "redis at " + where() + " failed " + args.at(0) + ": " + message);
    }
}

RedisReply RedisConnection::command(const std::vector<std::string>& args) {
    Outcome outcome = send(args);
    if (outcome.error)
        throw core::Error(core::ErrorCode::INTERNAL,
                          "redis at " + where() + ": " + args.at(0) + ": " + *outcome.error);
    return std::move(outcome.reply);
}

std::string RedisConnection::load_script(const std::string& script) {
    return command({"SCRIPT", "LOAD", script}).as_string();
}

RedisReply RedisConnection::eval(const std::string& script,
                                 const std::vector<std::string>& keys,
                                 const std::vector<std::string>& args) {
    auto cached = script_sha_.find(script);
    if (cached == script_sha_.end())
        cached = script_sha_.emplace(script, load_script(script)).first;
    std::vector<std::string> argv = {"EVALSHA", cached->second, std::to_string(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    Outcome outcome = send(argv);
    // The server forgets its scripts on restart and on SCRIPT FLUSH.
    if (outcome.error && outcome.error->starts_with("NOSCRIPT")) {
        cached->second = load_script(script);
        argv[1] = cached->second;
        outcome = send(argv);
    }
    if (outcome.error)
        throw core::Error(core::ErrorCode::INTERNAL,
                          "redis at " + where() + ": script: " + *outcome.error);
    return std::move(outcome.reply);
}

}  // namespace kiln::scheduler
