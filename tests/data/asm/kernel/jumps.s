// conditional jumps, JMP and JMP32, to labels forward and back
LBB0_1:
if r1 == r2 goto LBB0_2
if r3 == -5 goto LBB0_1
if r1 != r2 goto LBB0_2
if r3 != -5 goto LBB0_1
if r1 > r2 goto LBB0_2
if r3 > -5 goto LBB0_1
if r1 >= r2 goto LBB0_2
if r3 >= -5 goto LBB0_1
if r1 < r2 goto LBB0_2
if r3 < -5 goto LBB0_1
if r1 <= r2 goto LBB0_2
if r3 <= -5 goto LBB0_1
if r1 s> r2 goto LBB0_2
if r3 s> -5 goto LBB0_1
if r1 s>= r2 goto LBB0_2
if r3 s>= -5 goto LBB0_1
if r1 s< r2 goto LBB0_2
if r3 s< -5 goto LBB0_1
if r1 s<= r2 goto LBB0_2
if r3 s<= -5 goto LBB0_1
if w1 == w2 goto LBB0_2
if w3 == -5 goto LBB0_1
if w1 != w2 goto LBB0_2
if w3 != -5 goto LBB0_1
if w1 > w2 goto LBB0_2
if w3 > -5 goto LBB0_1
if w1 >= w2 goto LBB0_2
if w3 >= -5 goto LBB0_1
if w1 < w2 goto LBB0_2
if w3 < -5 goto LBB0_1
if w1 <= w2 goto LBB0_2
if w3 <= -5 goto LBB0_1
if w1 s> w2 goto LBB0_2
if w3 s> -5 goto LBB0_1
if w1 s>= w2 goto LBB0_2
if w3 s>= -5 goto LBB0_1
if w1 s< w2 goto LBB0_2
if w3 s< -5 goto LBB0_1
if w1 s<= w2 goto LBB0_2
if w3 s<= -5 goto LBB0_1
goto LBB0_1
LBB0_2:
goto +1
call 1
exit
