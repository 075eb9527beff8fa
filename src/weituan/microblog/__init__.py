"""The micro-blog: posts, reposts, comments, likes, relations, mentions, topics, notifications."""
