"""Classic program: recursive game-tree search (negamax with alpha-beta).

Owns: a 4x4 "four in a row" game (rows, columns, diagonals) searched to a
fixed depth from a set of opening positions.  Boards are tuples; every move
builds a new tuple, every node builds a move list.  Allocation profile: deep
recursion with many short-lived tuples and lists.  Single-threaded;
deterministic.
"""

SIZE = 4
LINES = []
for _r in range(SIZE):
    LINES.append(tuple(_r * SIZE + _c for _c in range(SIZE)))
for _c in range(SIZE):
    LINES.append(tuple(_r * SIZE + _c for _r in range(SIZE)))
LINES.append(tuple(_i * SIZE + _i for _i in range(SIZE)))
LINES.append(tuple(_i * SIZE + SIZE - 1 - _i for _i in range(SIZE)))
LINES = tuple(LINES)


def winner(board):
    for line in LINES:
        first = board[line[0]]
        if first and all(board[i] == first for i in line):
            return first
    return 0


def heuristic(board, player):
    score = 0
    for line in LINES:
        mine = sum(1 for i in line if board[i] == player)
        theirs = sum(1 for i in line if board[i] == -player)
        if theirs == 0:
            score += mine * mine
        if mine == 0:
            score -= theirs * theirs
    return score


def moves(board):
    return [i for i, cell in enumerate(board) if cell == 0]


def play(board, index, player):
    return board[:index] + (player,) + board[index + 1:]


def negamax(board, player, depth, alpha, beta, counter):
    counter[0] += 1
    won = winner(board)
    if won:
        return 1000 if won == player else -1000
    options = moves(board)
    if not options:
        return 0
    if depth == 0:
        return heuristic(board, player)
    best = -10000
    for index in options:
        value = -negamax(play(board, index, player), -player, depth - 1,
                         -beta, -alpha, counter)
        if value > best:
            best = value
        if best > alpha:
            alpha = best
        if alpha >= beta:
            break
    return best


def openings(count):
    empty = (0,) * (SIZE * SIZE)
    out = []
    for k in range(count):
        a = (k * 5) % 16
        b = (k * 11 + 3) % 16
        if a == b:
            b = (b + 1) % 16
        out.append(play(play(empty, a, 1), b, -1))
    return out


def run(scale):
    counter = [0]
    total = 0
    for board in openings(int(24 * scale) + 1):
        total += negamax(board, 1, 3, -10000, 10000, counter)
    return counter[0] * 7 + total
